//! The population hexgrid (`porto_alegre_hexgrid.csv`): where people live and where the
//! health facilities are. Parsing is strict and every error names its line.

use dispatch_core::geo::LatLon;
use std::fmt;

/// One H3 hexagon (resolution 9, about 0.1 km²) with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Hexagon {
    /// The H3 index as text (kept only to name the hexagon in messages).
    pub id: String,
    pub centroid: LatLon,
    pub population: u32,
    pub schools: u32,
    pub jobs: u32,
    /// Health facilities: the candidate ambulance bases.
    pub healthcare: u32,
}

/// Why a hexgrid file could not be read. Line numbers count from 1 (the header is line 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HexgridError {
    #[error("line 1: header must be `{expected}`, found `{found}`")]
    BadHeader {
        expected: &'static str,
        found: String,
    },
    #[error("line {line}: expected {expected} comma-separated fields, found {found}")]
    FieldCount {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("line {line}: field `{field}` is not a valid {what}: `{value}`")]
    BadField {
        line: usize,
        field: &'static str,
        what: &'static str,
        value: String,
    },
    #[error("line {line}: centroid {lat},{lon} is not a WGS84 position")]
    BadPosition { line: usize, lat: f64, lon: f64 },
    #[error("the hexgrid has no rows")]
    Empty,
}

/// The exact header the r5r hexgrid carries.
pub const HEADER: &str = "id,lon,lat,population,schools,jobs,healthcare";

/// All hexagons of one file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Hexgrid {
    pub hexagons: Vec<Hexagon>,
}

impl Hexgrid {
    /// Parses the CSV text. Blank lines (for example a trailing newline) are skipped.
    pub fn parse(text: &str) -> Result<Hexgrid, HexgridError> {
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
        // A BOM from spreadsheet exports is not a different header.
        let header = header.trim_start_matches('\u{feff}');
        if header != HEADER {
            return Err(HexgridError::BadHeader {
                expected: HEADER,
                found: header.to_string(),
            });
        }
        let mut hexagons = Vec::new();
        for (index, raw) in lines {
            let line = index + 1;
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
            if fields.len() != 7 {
                return Err(HexgridError::FieldCount {
                    line,
                    expected: 7,
                    found: fields.len(),
                });
            }
            let lon = parse_f64(line, "lon", fields[1])?;
            let lat = parse_f64(line, "lat", fields[2])?;
            let centroid =
                LatLon::new(lat, lon).map_err(|_| HexgridError::BadPosition { line, lat, lon })?;
            hexagons.push(Hexagon {
                id: fields[0].to_string(),
                centroid,
                population: parse_count(line, "population", fields[3])?,
                schools: parse_count(line, "schools", fields[4])?,
                jobs: parse_count(line, "jobs", fields[5])?,
                healthcare: parse_count(line, "healthcare", fields[6])?,
            });
        }
        if hexagons.is_empty() {
            return Err(HexgridError::Empty);
        }
        Ok(Hexgrid { hexagons })
    }

    /// Total residents.
    pub fn population(&self) -> u64 {
        self.hexagons.iter().map(|h| u64::from(h.population)).sum()
    }
}

impl fmt::Display for Hexgrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} hexagons, {} residents",
            self.hexagons.len(),
            self.population()
        )
    }
}

fn parse_f64(line: usize, field: &'static str, value: &str) -> Result<f64, HexgridError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| HexgridError::BadField {
            line,
            field,
            what: "number",
            value: value.to_string(),
        })
}

/// Counts are whole and non-negative; the r5r file writes them as integers, but tolerate
/// `12.0` from tools that round-trip through floats. An empty count is 0: the real file leaves
/// `jobs` and `healthcare` empty on five unpopulated hexagons.
fn parse_count(line: usize, field: &'static str, value: &str) -> Result<u32, HexgridError> {
    if value.is_empty() {
        return Ok(0);
    }
    let bad = || HexgridError::BadField {
        line,
        field,
        what: "non-negative count",
        value: value.to_string(),
    };
    if let Ok(n) = value.parse::<u32>() {
        return Ok(n);
    }
    let f = value.parse::<f64>().map_err(|_| bad())?;
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= f64::from(u32::MAX) {
        Ok(f as u32)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_skips_blank_lines() {
        let text = format!("{HEADER}\nA,-51.2,-30.0,159,0,3,2\n\nB,-51.1,-30.1,0,1,0,0\n");
        let grid = Hexgrid::parse(&text).unwrap();
        assert_eq!(grid.hexagons.len(), 2);
        assert_eq!(grid.hexagons[0].population, 159);
        assert_eq!(grid.hexagons[0].healthcare, 2);
        assert_eq!(
            grid.hexagons[1].centroid,
            LatLon {
                lat: -30.1,
                lon: -51.1
            }
        );
        assert_eq!(grid.population(), 159);
    }

    #[test]
    fn a_bad_header_is_named() {
        let err = Hexgrid::parse("id,lat,lon,population,schools,jobs,healthcare\n").unwrap_err();
        assert!(
            err.to_string().starts_with("line 1: header must be"),
            "{err}"
        );
    }

    #[test]
    fn a_non_numeric_field_names_its_line_and_field() {
        let text = format!("{HEADER}\nA,-51.2,-30.0,159,0,3,2\nB,-51.1,-30.1,many,1,0,0\n");
        let err = Hexgrid::parse(&text).unwrap_err();
        assert_eq!(
            err,
            HexgridError::BadField {
                line: 3,
                field: "population",
                what: "non-negative count",
                value: "many".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "line 3: field `population` is not a valid non-negative count: `many`"
        );
    }

    #[test]
    fn wrong_field_count_and_bad_positions_are_named() {
        let text = format!("{HEADER}\nA,-51.2,-30.0,159,0,3\n");
        assert_eq!(
            Hexgrid::parse(&text).unwrap_err(),
            HexgridError::FieldCount {
                line: 2,
                expected: 7,
                found: 6
            }
        );
        let text = format!("{HEADER}\nA,-51.2,-95.0,159,0,3,0\n");
        assert!(matches!(
            Hexgrid::parse(&text).unwrap_err(),
            HexgridError::BadPosition { line: 2, .. }
        ));
        let text = format!("{HEADER}\nA,-51.2,-30.0,159,0,,\n");
        assert_eq!(Hexgrid::parse(&text).unwrap().hexagons[0].healthcare, 0);
        let text = format!("{HEADER}\nA,abc,-30.0,159,0,3,0\n");
        assert!(Hexgrid::parse(&text)
            .unwrap_err()
            .to_string()
            .contains("line 2: field `lon`"));
        assert_eq!(Hexgrid::parse(HEADER).unwrap_err(), HexgridError::Empty);
    }

    #[test]
    fn the_real_porto_alegre_grid_has_the_documented_counts() {
        let text =
            std::fs::read_to_string(dispatch_core::testdata::porto_alegre_hexgrid()).unwrap();
        let grid = Hexgrid::parse(&text).unwrap();
        assert_eq!(grid.hexagons.len(), 1227);
        assert_eq!(
            grid.hexagons.iter().filter(|h| h.population > 0).count(),
            1124
        );
        assert_eq!(grid.population(), 812_935);
        assert_eq!(
            grid.hexagons.iter().filter(|h| h.healthcare > 0).count(),
            117
        );
        assert_eq!(grid.hexagons.iter().map(|h| h.healthcare).sum::<u32>(), 141);
    }
}
