//! SVG charts of the response-time distributions (empirical CDFs, one line per policy) against
//! the 3 min and 11 min promises.

use plotters::prelude::*;
use std::path::Path;

/// One curve: a policy's name and its response times in seconds (only incidents that reached
/// the milestone; `of` is how many it applied to, so a curve that tops out below 100 % shows
/// the incidents never reached).
#[derive(Debug, Clone)]
pub struct Curve<'a> {
    pub name: &'a str,
    pub seconds: &'a [f64],
    pub of: usize,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    GREEN,
    MAGENTA,
];

/// Writes an ECDF chart to `path`: x = seconds since the alert, y = share of incidents on scene.
pub fn ecdf_svg(
    path: &Path,
    title: &str,
    curves: &[Curve<'_>],
    target_s: f64,
) -> anyhow::Result<()> {
    let max_s = curves
        .iter()
        .flat_map(|c| c.seconds.iter().copied())
        .fold(target_s * 1.5, f64::max)
        .min(target_s * 6.0);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_s, 0.0..100.0)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the alert")
        .y_desc("% of incidents")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, curve) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut xs: Vec<f64> = curve
            .seconds
            .iter()
            .copied()
            .filter(|s| s.is_finite())
            .collect();
        xs.sort_by(f64::total_cmp);
        let n = curve.of.max(xs.len()).max(1) as f64;
        let mut points = vec![(0.0, 0.0)];
        for (k, x) in xs.iter().enumerate() {
            let x = x.min(max_s);
            points.push((x, k as f64 / n * 100.0));
            points.push((x, (k + 1) as f64 / n * 100.0));
        }
        points.push((max_s, xs.len() as f64 / n * 100.0));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(format!("{} ({} of {})", curve.name, xs.len(), curve.of))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    let label = if target_s >= 60.0 {
        format!("{} min", target_s / 60.0)
    } else {
        format!("{target_s} s")
    };
    chart
        .draw_series(LineSeries::new(
            vec![(target_s, 0.0), (target_s, 100.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label(format!("target {label}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_both_curves_and_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        let a = [100.0, 150.0, 400.0];
        let b = [200.0, 260.0];
        ecdf_svg(
            &path,
            "community on scene",
            &[
                Curve {
                    name: "engine",
                    seconds: &a,
                    of: 3,
                },
                Curve {
                    name: "nearest_radius",
                    seconds: &b,
                    of: 3,
                },
            ],
            180.0,
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("engine (3 of 3)"));
        assert!(svg.contains("nearest_radius (2 of 3)"));
        assert!(svg.contains("target 3 min"));
    }
}
