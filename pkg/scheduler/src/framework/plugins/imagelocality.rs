//! ImageLocality (upstream `imagelocality`): nodes that already have the pod's images
//! score higher, by image size scaled by how widely the image is spread (so one node
//! holding a common image does not attract every pod).

use crate::framework::{CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PodInfo, Snapshot};

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

/// The name nodes report for an image reference (`nginx` is `docker.io/library/nginx:latest`).
pub fn normalized_image_name(image: &str) -> String {
    let has_tag = image
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':') || last.contains('@'));
    let mut name = image.to_string();
    if !has_tag {
        name.push_str(":latest");
    }
    name
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        super::names::IMAGE_LOCALITY
    }

    fn score(
        &self,
        _: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        snapshot: &Snapshot<'_>,
    ) -> i64 {
        let total = snapshot.nodes.len().max(1) as f64;
        let mut sum = 0i64;
        for name in &pod.images {
            if let Some(size) = node.images.get(name) {
                let spread = snapshot.image_nodes.get(name).copied().unwrap_or(1) as f64 / total;
                sum += (*size as f64 * spread) as i64;
            }
        }
        let count = pod.images.len() as i64;
        let max = MAX_CONTAINER_THRESHOLD * count.max(1);
        let sum = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}
