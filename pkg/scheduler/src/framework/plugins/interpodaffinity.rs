//! InterPodAffinity (upstream `interpodaffinity`): required pod affinity needs a matching
//! pod in the node's topology domain (unless no pod matches anywhere and the pod matches
//! its own term), required anti-affinity forbids one, and existing pods' anti-affinity
//! keeps matching pods out of their domains. Preferred terms (the pod's, and existing
//! pods' terms that match it) weigh domains up or down.

use crate::framework::{
    CycleState, MAX_NODE_SCORE, NodeInfo, NodeScore, Plugin, PodInfo, PreFilterResult, Snapshot,
    Status,
};
use apimachinery::labels::Selector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

const FILTER_KEY: &str = "PreFilterInterPodAffinity";
const SCORE_KEY: &str = "PreScoreInterPodAffinity";

pub struct InterPodAffinity;

/// A term ready to match pods: its namespaces, selector and topology key (parsed once
/// per pod version, in its PodInfo).
#[derive(Debug)]
pub struct Term {
    namespaces: HashSet<String>,
    /// `namespaceSelector: {}`: every namespace.
    all_namespaces: bool,
    selector: Selector,
    key: String,
}

impl Term {
    fn new(
        labels: &BTreeMap<String, String>,
        namespace: &str,
        t: &PodAffinityTerm,
    ) -> Option<Term> {
        let mut sel = t
            .label_selector
            .as_ref()
            .map(|s| serde_json::to_value(s).unwrap_or_default())?;
        for k in t.match_label_keys.iter().flatten() {
            if let Some(v) = labels.get(k) {
                sel["matchExpressions"]
                    .as_array_mut()
                    .map(|a| a.push(serde_json::json!({"key": k, "operator": "In", "values": [v]})))
                    .unwrap_or_else(|| {
                        sel["matchExpressions"] =
                            serde_json::json!([{"key": k, "operator": "In", "values": [v]}])
                    });
            }
        }
        for k in t.mismatch_label_keys.iter().flatten() {
            if let Some(v) = labels.get(k) {
                let e = serde_json::json!({"key": k, "operator": "NotIn", "values": [v]});
                match sel["matchExpressions"].as_array_mut() {
                    Some(a) => a.push(e),
                    None => sel["matchExpressions"] = serde_json::json!([e]),
                }
            }
        }
        let selector = Selector::from_label_selector(Some(&sel)).ok()?;
        let mut namespaces: HashSet<String> = t.namespaces.iter().flatten().cloned().collect();
        // An empty namespaceSelector selects all namespaces; namespaces listed by label
        // would need the Namespace objects, which this scheduler does not watch yet.
        let all_namespaces = t.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        });
        if namespaces.is_empty() && t.namespace_selector.is_none() {
            namespaces.insert(namespace.to_string());
        }
        Some(Term {
            namespaces,
            all_namespaces,
            selector,
            key: t.topology_key.clone(),
        })
    }

    fn matches(&self, p: &PodInfo) -> bool {
        (self.all_namespaces || self.namespaces.contains(p.namespace()))
            && self.selector.matches(p.labels())
    }
}

/// A pod's affinity terms, parsed.
#[derive(Debug, Default)]
pub struct Terms {
    pub required_affinity: Vec<Term>,
    pub required_anti_affinity: Vec<Term>,
    /// Preferred affinity (positive weight) and anti-affinity (negative).
    pub preferred: Vec<(Term, i64)>,
}

impl Terms {
    pub fn of(pod: &Pod) -> Terms {
        let Some(a) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
            return Terms::default();
        };
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&EMPTY);
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let required = |list: Option<&Vec<PodAffinityTerm>>| {
            list.into_iter()
                .flatten()
                .filter_map(|t| Term::new(labels, ns, t))
                .collect::<Vec<_>>()
        };
        let weighted = |list: Option<&Vec<WeightedPodAffinityTerm>>, sign: i64| {
            list.into_iter()
                .flatten()
                .filter_map(move |w| {
                    Term::new(labels, ns, &w.pod_affinity_term)
                        .map(|t| (t, sign * i64::from(w.weight)))
                })
                .collect::<Vec<_>>()
        };
        let pos = a.pod_affinity.as_ref();
        let neg = a.pod_anti_affinity.as_ref();
        let mut preferred = weighted(
            pos.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            1,
        );
        preferred.extend(weighted(
            neg.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
            -1,
        ));
        Terms {
            required_affinity: required(pos.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: required(neg.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred.is_empty()
    }
}

type Pair = (String, String);

/// What one batch of nodes contributes to the PreFilter state.
#[derive(Default)]
struct Found {
    any_affinity_match: bool,
    /// (affinity term index, key, value).
    affinity: HashSet<(usize, String, String)>,
    anti_affinity: HashSet<Pair>,
    existing: HashSet<Pair>,
}

impl Found {
    fn merge(mut self, o: Found) -> Found {
        self.any_affinity_match |= o.any_affinity_match;
        self.affinity.extend(o.affinity);
        self.anti_affinity.extend(o.anti_affinity);
        self.existing.extend(o.existing);
        self
    }
}

struct FilterState {
    /// Per affinity term: domains holding a matching pod.
    affinity_domains: Vec<HashSet<Pair>>,
    /// No pod anywhere matches the affinity terms, but the pod matches them itself.
    first_of_its_kind: bool,
    anti_affinity_domains: HashSet<Pair>,
    /// Domains an existing pod's anti-affinity keeps this pod out of.
    existing_anti_affinity_domains: HashSet<Pair>,
}

fn in_domain(domains: &HashSet<Pair>, key: &str, labels: &BTreeMap<String, String>) -> bool {
    labels
        .get(key)
        .is_some_and(|v| domains.contains(&(key.to_string(), v.clone())))
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        super::names::INTER_POD_AFFINITY
    }

    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot<'_>,
    ) -> (PreFilterResult, Status) {
        let terms = &pod.affinity;
        let own = !terms.required_affinity.is_empty() || !terms.required_anti_affinity.is_empty();
        // Per node, in parallel: the domains its pods put into each set.
        let found = snapshot
            .nodes
            .par_iter()
            .with_min_len(64)
            .filter(|node| own || node.pods_with_affinity > 0)
            .fold(Found::default, |mut acc, node| {
                let labels = node.labels();
                for p in &node.pods {
                    for (i, t) in terms.required_affinity.iter().enumerate() {
                        if t.matches(p) {
                            acc.any_affinity_match = true;
                            if let Some(v) = labels.get(&t.key) {
                                acc.affinity.insert((i, t.key.clone(), v.clone()));
                            }
                        }
                    }
                    for t in &terms.required_anti_affinity {
                        if t.matches(p)
                            && let Some(v) = labels.get(&t.key)
                        {
                            acc.anti_affinity.insert((t.key.clone(), v.clone()));
                        }
                    }
                    if p.has_required_anti_affinity {
                        for t in &p.affinity.required_anti_affinity {
                            if t.matches(pod)
                                && let Some(v) = labels.get(&t.key)
                            {
                                acc.existing.insert((t.key.clone(), v.clone()));
                            }
                        }
                    }
                }
                acc
            })
            .reduce(Found::default, Found::merge);
        if !own && found.existing.is_empty() {
            return (None, Status::skip());
        }
        let mut affinity_domains = vec![HashSet::new(); terms.required_affinity.len()];
        for (i, k, v) in found.affinity {
            affinity_domains[i].insert((k, v));
        }
        let first_of_its_kind =
            !found.any_affinity_match && terms.required_affinity.iter().all(|t| t.matches(pod));
        state.write(
            FILTER_KEY,
            FilterState {
                affinity_domains,
                first_of_its_kind,
                anti_affinity_domains: found.anti_affinity,
                existing_anti_affinity_domains: found.existing,
            },
        );
        (None, Status::success())
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(st) = state.read::<FilterState>(FILTER_KEY) else {
            return Status::success();
        };
        let labels = node.labels();
        let terms = &pod.affinity;
        if !st.first_of_its_kind
            && !terms
                .required_affinity
                .iter()
                .zip(&st.affinity_domains)
                .all(|(t, domains)| in_domain(domains, &t.key, labels))
        {
            return Status::unresolvable(ERR_AFFINITY);
        }
        if terms
            .required_anti_affinity
            .iter()
            .any(|t| in_domain(&st.anti_affinity_domains, &t.key, labels))
        {
            return Status::unschedulable(ERR_ANTI_AFFINITY);
        }
        // Upstream's order: the pod's own terms, then existing pods' anti-affinity.
        if st
            .existing_anti_affinity_domains
            .iter()
            .any(|(k, v)| labels.get(k) == Some(v))
        {
            return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &[&NodeInfo],
        snapshot: &Snapshot<'_>,
    ) -> Status {
        let own = &pod.affinity.preferred;
        let weights = snapshot
            .nodes
            .par_iter()
            .with_min_len(64)
            .filter(|node| !own.is_empty() || node.pods_with_affinity > 0)
            .fold(HashMap::new, |mut acc: HashMap<Pair, i64>, node| {
                let labels = node.labels();
                for p in &node.pods {
                    for (t, w) in own {
                        if t.matches(p)
                            && let Some(v) = labels.get(&t.key)
                        {
                            *acc.entry((t.key.clone(), v.clone())).or_default() += w;
                        }
                    }
                    // Existing pods' preferences about pods like this one count too.
                    if p.has_affinity {
                        for (t, w) in &p.affinity.preferred {
                            if t.matches(pod)
                                && let Some(v) = labels.get(&t.key)
                            {
                                *acc.entry((t.key.clone(), v.clone())).or_default() += w;
                            }
                        }
                    }
                }
                acc
            })
            .reduce(HashMap::new, |mut a, b| {
                for (k, v) in b {
                    *a.entry(k).or_default() += v;
                }
                a
            });
        if weights.is_empty() {
            return Status::skip();
        }
        state.write(SCORE_KEY, weights);
        Status::success()
    }

    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo, _: &Snapshot<'_>) -> i64 {
        let Some(weights) = state.read::<HashMap<Pair, i64>>(SCORE_KEY) else {
            return 0;
        };
        node.labels()
            .iter()
            .filter_map(|(k, v)| weights.get(&(k.clone(), v.clone())))
            .sum()
    }

    fn normalize_score(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) {
        let (min, max) = scores.iter().fold((i64::MAX, i64::MIN), |(lo, hi), s| {
            (lo.min(s.score), hi.max(s.score))
        });
        let range = max - min;
        for s in scores.iter_mut() {
            s.score = if range > 0 {
                MAX_NODE_SCORE * (s.score - min) / range
            } else {
                0
            };
        }
    }
}
