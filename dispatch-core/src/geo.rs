//! Positions: WGS84 lat/lon at the edges, metres inside. This is the one place degrees
//! become metres, and the one place the Chinese map datums (GCJ-02, BD-09) become WGS84.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::fmt;

/// Mean Earth radius (IUGG), the radius DESIGN §3 fixes for edge lengths.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatLon {
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat: f64,
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon: f64,
}

/// Why a position is not a position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("latitude {0} is not a number in -90..=90")]
    BadLatitude(f64),
    #[error("longitude {0} is not a number in -180..=180")]
    BadLongitude(f64),
}

impl LatLon {
    /// A checked position: finite, latitude in ±90, longitude in ±180.
    pub fn new(lat: f64, lon: f64) -> Result<LatLon, GeoError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::BadLatitude(lat));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(GeoError::BadLongitude(lon));
        }
        Ok(LatLon { lat, lon })
    }

    /// Re-checks a position built from fields (for example one that came through serde).
    pub fn validate(self) -> Result<LatLon, GeoError> {
        LatLon::new(self.lat, self.lon)
    }
}

impl fmt::Display for LatLon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6},{:.6}", self.lat, self.lon)
    }
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn haversine_m(a: LatLon, b: LatLon) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A local equirectangular projection centred on a city: metres east (`x`) and north (`y`)
/// of `origin`.
///
/// Over a city (tens of km) it differs from the great-circle distance by well under 0.5 %, so
/// it is what the R-trees index. Code that needs a *guaranteed* lower bound on distance (ETA
/// pruning) must use [`Projection::LOWER_BOUND_FACTOR`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub origin: LatLon,
    m_per_deg_lat: f64,
    m_per_deg_lon: f64,
}

impl Projection {
    /// Multiply a projected distance by this to get a value that never exceeds the
    /// haversine distance anywhere within ~50 km of the origin (the projection's error there is
    /// far below 1 %).
    pub const LOWER_BOUND_FACTOR: f64 = 0.99;

    pub fn new(origin: LatLon) -> Projection {
        let m_per_deg = EARTH_RADIUS_M * PI / 180.0;
        Projection {
            origin,
            m_per_deg_lat: m_per_deg,
            m_per_deg_lon: m_per_deg * origin.lat.to_radians().cos(),
        }
    }

    /// Degrees to metres.
    pub fn to_xy(&self, p: LatLon) -> [f64; 2] {
        [
            (p.lon - self.origin.lon) * self.m_per_deg_lon,
            (p.lat - self.origin.lat) * self.m_per_deg_lat,
        ]
    }

    /// Metres back to degrees.
    pub fn to_latlon(&self, xy: [f64; 2]) -> LatLon {
        LatLon {
            lat: self.origin.lat + xy[1] / self.m_per_deg_lat,
            lon: self.origin.lon + xy[0] / self.m_per_deg_lon,
        }
    }
}

/// The datum a device reported a position in (DESIGN §5: `"crs"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    /// WGS84, what GPS reports and what everything inside the engine uses.
    #[default]
    Wgs84,
    /// GCJ-02 ("Mars coordinates"), the datum of maps licensed in mainland China.
    Gcj02,
    /// BD-09, Baidu's further offset of GCJ-02.
    Bd09,
}

impl Crs {
    /// Converts a position in this datum to WGS84.
    pub fn to_wgs84(self, p: LatLon) -> LatLon {
        match self {
            Crs::Wgs84 => p,
            Crs::Gcj02 => gcj02_to_wgs84(p),
            Crs::Bd09 => gcj02_to_wgs84(bd09_to_gcj02(p)),
        }
    }
}

// GCJ-02 constants: the Krasovsky 1940 ellipsoid the published algorithm uses.
const GCJ_A: f64 = 6_378_245.0;
const GCJ_EE: f64 = 0.006_693_421_622_965_943;

/// GCJ-02 offsets positions only inside (a rectangle around) mainland China; elsewhere the
/// Chinese SDKs report plain WGS84, so outside it the conversion is the identity.
pub fn outside_china(p: LatLon) -> bool {
    !(72.004..=137.8347).contains(&p.lon) || !(0.8293..=55.8271).contains(&p.lat)
}

fn gcj_dlat(x: f64, y: f64) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn gcj_dlon(x: f64, y: f64) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS84 → GCJ-02 (the published forward transform).
pub fn wgs84_to_gcj02(p: LatLon) -> LatLon {
    if outside_china(p) {
        return p;
    }
    let (x, y) = (p.lon - 105.0, p.lat - 35.0);
    let rad_lat = p.lat.to_radians();
    let magic = 1.0 - GCJ_EE * rad_lat.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let dlat = gcj_dlat(x, y) * 180.0 / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * PI);
    let dlon = gcj_dlon(x, y) * 180.0 / (GCJ_A / sqrt_magic * rad_lat.cos() * PI);
    LatLon {
        lat: p.lat + dlat,
        lon: p.lon + dlon,
    }
}

/// GCJ-02 → WGS84, by fixed-point iteration of the forward transform (converges to
/// millimetres in a handful of steps; the one-step inverse many libraries use is off by metres).
pub fn gcj02_to_wgs84(g: LatLon) -> LatLon {
    if outside_china(g) {
        return g;
    }
    let mut w = g;
    for _ in 0..30 {
        let f = wgs84_to_gcj02(w);
        let (dlat, dlon) = (f.lat - g.lat, f.lon - g.lon);
        w = LatLon {
            lat: w.lat - dlat,
            lon: w.lon - dlon,
        };
        if dlat.abs() < 1e-10 && dlon.abs() < 1e-10 {
            break;
        }
    }
    w
}

const BD_X_PI: f64 = PI * 3000.0 / 180.0;

/// BD-09 → GCJ-02 (Baidu's published inverse).
pub fn bd09_to_gcj02(b: LatLon) -> LatLon {
    let (x, y) = (b.lon - 0.0065, b.lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) - 0.000003 * (x * BD_X_PI).cos();
    LatLon {
        lat: z * theta.sin(),
        lon: z * theta.cos(),
    }
}

/// GCJ-02 → BD-09 (Baidu's published forward transform).
pub fn gcj02_to_bd09(g: LatLon) -> LatLon {
    let (x, y) = (g.lon, g.lat);
    let z = (x * x + y * y).sqrt() + 0.00002 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) + 0.000003 * (x * BD_X_PI).cos();
    LatLon {
        lat: z * theta.sin() + 0.006,
        lon: z * theta.cos() + 0.0065,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude on the mean sphere.
        let d = haversine_m(ll(0.0, 0.0), ll(1.0, 0.0));
        assert!((d - 111_195.08).abs() < 0.05, "{d}");
        // Porto Alegre, across the extract diagonally: about 18.4 km.
        let d = haversine_m(ll(-30.11333, -51.26635), ll(-29.99047, -51.13216));
        assert!((18_000.0..19_000.0).contains(&d), "{d}");
        assert_eq!(haversine_m(ll(10.0, 10.0), ll(10.0, 10.0)), 0.0);
    }

    #[test]
    fn projection_round_trips_and_stays_close_to_haversine() {
        let proj = Projection::new(ll(-30.05, -51.2));
        for (lat, lon) in [
            (-30.11, -51.26),
            (-29.99, -51.13),
            (-30.05, -51.2),
            (-30.0, -51.25),
        ] {
            let p = ll(lat, lon);
            let back = proj.to_latlon(proj.to_xy(p));
            assert!((back.lat - lat).abs() < 1e-12 && (back.lon - lon).abs() < 1e-12);
            let [x, y] = proj.to_xy(p);
            let flat = (x * x + y * y).sqrt();
            let sphere = haversine_m(proj.origin, p);
            assert!(
                flat * Projection::LOWER_BOUND_FACTOR <= sphere,
                "{flat} vs {sphere}"
            );
            assert!(
                (flat - sphere).abs() <= 0.005 * sphere + 1e-9,
                "{flat} vs {sphere}"
            );
        }
    }

    #[test]
    fn bad_coordinates_are_errors() {
        assert_eq!(LatLon::new(91.0, 0.0), Err(GeoError::BadLatitude(91.0)));
        assert!(matches!(
            LatLon::new(f64::NAN, 0.0),
            Err(GeoError::BadLatitude(_))
        ));
        assert_eq!(
            LatLon::new(0.0, -180.5),
            Err(GeoError::BadLongitude(-180.5))
        );
        assert!(LatLon::new(0.0, f64::INFINITY).is_err());
    }

    // Reference values: the widely published test vector of the GCJ-02/BD-09 transforms
    // (Tiananmen, Beijing), as given by the coordtransform libraries.
    #[test]
    fn gcj02_forward_matches_published_reference() {
        let g = wgs84_to_gcj02(ll(39.915, 116.404));
        assert!((g.lat - 39.916_404_281_501_64).abs() < 1e-9, "{g:?}");
        assert!((g.lon - 116.410_244_499_169_38).abs() < 1e-9, "{g:?}");
    }

    #[test]
    fn bd09_transforms_match_published_reference() {
        let b = gcj02_to_bd09(ll(39.915, 116.404));
        assert!((b.lat - 39.921_336_993_510_22).abs() < 1e-9, "{b:?}");
        assert!((b.lon - 116.410_369_493_710_29).abs() < 1e-9, "{b:?}");
        let g = bd09_to_gcj02(ll(39.915, 116.404));
        assert!((g.lat - 39.908_656_739_576_31).abs() < 1e-9, "{g:?}");
        assert!((g.lon - 116.397_627_291_193_15).abs() < 1e-9, "{g:?}");
    }

    #[test]
    fn inverse_transforms_round_trip_to_millimetres() {
        for (lat, lon) in [(39.915, 116.404), (31.2304, 121.4737), (22.5431, 114.0579)] {
            let w = ll(lat, lon);
            let back = Crs::Gcj02.to_wgs84(wgs84_to_gcj02(w));
            assert!(haversine_m(w, back) < 0.001, "{w:?} -> {back:?}");
            // Baidu's published BD-09 pair is not an exact inverse: it round-trips to ~0.1 m,
            // far below a phone's GPS error.
            let back = Crs::Bd09.to_wgs84(gcj02_to_bd09(wgs84_to_gcj02(w)));
            assert!(haversine_m(w, back) < 0.5, "{w:?} -> {back:?}");
        }
    }

    #[test]
    fn gcj02_is_identity_outside_china() {
        let porto_alegre = ll(-30.03, -51.22);
        assert_eq!(wgs84_to_gcj02(porto_alegre), porto_alegre);
        assert_eq!(Crs::Gcj02.to_wgs84(porto_alegre), porto_alegre);
    }

    #[test]
    fn crs_parses_from_its_wire_names() {
        let c: Crs = serde_json::from_str("\"gcj02\"").unwrap();
        assert_eq!(c, Crs::Gcj02);
        let c: Crs = serde_json::from_str("\"bd09\"").unwrap();
        assert_eq!(c, Crs::Bd09);
        assert!(serde_json::from_str::<Crs>("\"mars\"").is_err());
    }
}
