//! PodTemplates (upstream `pkg/registry/core/podtemplate`).

use crate::core::pod::{default_pod_spec, validate_pod_spec};
use crate::printers::{cols, containers_images, map_string};
use crate::typed::{Typed, info};
use k8s_openapi::api::core::v1::PodTemplate;

pub fn strategy() -> Typed<PodTemplate> {
    let i = info(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        true,
        "podtemplates",
    );
    let mut t = Typed::new(i);
    t.tracks_generation = true;
    t.default = |p: &mut PodTemplate| {
        if let Some(s) = p.template.as_mut().and_then(|t| t.spec.as_mut()) {
            default_pod_spec(s);
        }
    };
    t.validate = |p: &PodTemplate| match p.template.as_ref().and_then(|t| t.spec.as_ref()) {
        Some(s) => validate_pod_spec("template.spec", s),
        None => Vec::new(),
    };
    t.columns = Some(|| {
        cols(&[
            ("Containers", "string", 0),
            ("Images", "string", 0),
            ("Pod Labels", "string", 0),
        ])
    });
    t.row = |o| {
        let [c, i] = containers_images(&o["template"]["spec"]);
        vec![c, i, map_string(&o["template"]["metadata"]["labels"])]
    };
    t
}
