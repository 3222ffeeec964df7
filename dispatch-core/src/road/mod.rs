//! The road layer: OSM import, travel profiles, the graph, snapping and routing.
