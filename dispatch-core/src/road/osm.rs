//! Reading OpenStreetMap elements from an `.osm.pbf` stream: every node, and every way that
//! carries a `highway` tag (the only ways a profile can use). Opens nothing: the caller hands
//! in a reader.

use super::RoadError;
use osmpbf::{Element, ElementReader};
use std::io::Read;

/// An OSM node: an id and a WGS84 position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OsmNode {
    pub id: i64,
    pub lat: f64,
    pub lon: f64,
}

/// An OSM way: its node ids in order and its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct OsmWay {
    pub id: i64,
    pub nodes: Vec<i64>,
    pub tags: Vec<(String, String)>,
}

/// Reads all nodes and the `highway=*` ways of a PBF stream.
pub(crate) fn read_pbf<R: Read + Send>(
    reader: R,
) -> Result<(Vec<OsmNode>, Vec<OsmWay>), RoadError> {
    let mut nodes = Vec::new();
    let mut ways = Vec::new();
    ElementReader::new(reader)
        .for_each(|element| match element {
            Element::Node(n) => nodes.push(OsmNode {
                id: n.id(),
                lat: n.lat(),
                lon: n.lon(),
            }),
            Element::DenseNode(n) => nodes.push(OsmNode {
                id: n.id(),
                lat: n.lat(),
                lon: n.lon(),
            }),
            Element::Way(w) => {
                if w.tags().any(|(k, _)| k == "highway") {
                    ways.push(OsmWay {
                        id: w.id(),
                        nodes: w.refs().collect(),
                        tags: w
                            .tags()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    });
                }
            }
            Element::Relation(_) => {}
        })
        .map_err(|e| RoadError::Pbf(e.to_string()))?;
    Ok((nodes, ways))
}
