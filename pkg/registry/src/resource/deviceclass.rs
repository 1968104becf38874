//! DeviceClasses (upstream `pkg/registry/resource/deviceclass`): cluster-scoped, with CEL
//! selectors that must compile.

use crate::printers::{age, cols};
use crate::typed::{Typed, simple};
use k8s_openapi::api::resource::v1::DeviceClass;

pub fn strategy() -> Typed<DeviceClass> {
    let mut t = simple(
        "resource.k8s.io",
        "v1",
        "DeviceClass",
        "deviceclasses",
        false,
        &[],
    );
    t.tracks_generation = true;
    t.validate = |d: &DeviceClass| {
        super::validation::selectors(
            "spec.selectors",
            d.spec.selectors.as_deref().unwrap_or_default(),
        )
    };
    t.columns = Some(|| cols(&[("Age", "date", 0)]));
    t.row = |o| vec![age(o)];
    t
}
