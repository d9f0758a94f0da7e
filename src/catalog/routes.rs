//! The two route families (`settings.routes`): the documented successors of the ten legacy
//! node routes, and the catalog as each family sees it.
//!
//! In: the static catalog (whose `path`s are the node's routes) and [`SUCCESSORS`]. Out:
//! [`lookup_for`] / [`resolve`], an action with the chosen family's route and only the
//! parameters that family has (see `docs/api-notes.md`, "Two route families").
//!
//! The 29 actions without a successor, and `http`, are the same in both families.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::data::{actions, lookup, HTTP};
use super::model::{ActionSpec, Method, ParamSpec, Routes};

/// The documented successor of a legacy node route.
#[derive(Debug, Clone, Copy)]
pub struct Successor {
    pub action: &'static str,
    pub method: Method,
    /// Route with the same `{param}` placeholders as the node route.
    pub path: &'static str,
    /// How the successor differs, in a few words (shown by `actions NAME`).
    pub differences: &'static str,
}

/// The ten actions whose node route is not in the published descriptions.
pub const SUCCESSORS: [Successor; 10] = [
    Successor {
        action: "contact.update",
        method: Method::Put,
        path: "/core/v2/contact/{contact_id}",
        differences: "same body",
    },
    Successor {
        action: "session.list",
        method: Method::Get,
        path: "/chat/v2/session",
        differences: "adds the tags_name, metadata and type filters; items carry `type`",
    },
    Successor {
        action: "session.get",
        method: Method::Get,
        path: "/chat/v2/session/{session_id}",
        differences: "the session carries `type`",
    },
    Successor {
        action: "panel.create_card",
        method: Method::Post,
        path: "/crm/v2/panel/card",
        differences: "the card has `status` and `lostReason` instead of `archived`",
    },
    Successor {
        action: "panel.duplicate_card",
        method: Method::Post,
        path: "/crm/v2/panel/card/{card_id}/duplicate",
        differences: "the card has `status` and `lostReason` instead of `archived`",
    },
    Successor {
        action: "panel.list_cards",
        method: Method::Get,
        path: "/crm/v2/panel/card",
        differences: "statuses replaces include_archived; cards have `status` and `lostReason`",
    },
    Successor {
        action: "panel.list",
        method: Method::Get,
        path: "/crm/v2/panel",
        differences: "adds the type and include_details filters",
    },
    Successor {
        action: "panel.get_card",
        method: Method::Get,
        path: "/crm/v2/panel/card/{card_id}",
        differences: "the card has `status` and `lostReason` instead of `archived`",
    },
    Successor {
        action: "panel.update_card",
        method: Method::Put,
        path: "/crm/v3/panel/card/{card_id}",
        differences: "status (ARCHIVED archives), lost_reason_id, tag_names and \
                      upsert_tag_operation replace archived",
    },
    Successor {
        action: "sequence.list_contacts",
        method: Method::Get,
        path: "/chat/v2/sequence/{sequence_id}/contact",
        differences: "adds the name, contact_id, phone_number and include_details filters",
    },
];

/// The documented successor of an action's node route, if it has one.
pub fn successor(action: &str) -> Option<&'static Successor> {
    SUCCESSORS.iter().find(|s| s.action == action)
}

/// The method and route an action calls under `routes`.
pub fn route_of(action: &ActionSpec, routes: Routes) -> (Method, &'static str) {
    match (routes, successor(action.name)) {
        (Routes::Documented, Some(s)) => (s.method, s.path),
        _ => (action.method, action.path),
    }
}

/// Whether a parameter exists under `routes`.
pub fn has_param(param: &ParamSpec, routes: Routes) -> bool {
    param.only.is_none_or(|only| only == routes)
}

/// The catalog as each family sees it: only the actions that differ (a successor route or
/// family-only parameters) have an entry; built once, on first use.
static RESOLVED: LazyLock<HashMap<(&'static str, Routes), &'static ActionSpec>> =
    LazyLock::new(|| {
        let mut out = HashMap::new();
        for action in actions() {
            for routes in [Routes::Documented, Routes::Node] {
                let (method, path) = route_of(action, routes);
                let differs =
                    path != action.path || action.params.iter().any(|p| !has_param(p, routes));
                if !differs {
                    continue;
                }
                let params: Vec<ParamSpec> = action
                    .params
                    .iter()
                    .filter(|p| has_param(p, routes))
                    .copied()
                    .collect();
                // Built once per (action, family) for the life of the process.
                let resolved: &'static ActionSpec = Box::leak(Box::new(ActionSpec {
                    method,
                    path,
                    params: Box::leak(params.into_boxed_slice()),
                    ..*action
                }));
                out.insert((action.name, routes), resolved);
            }
        }
        out
    });

/// An action as `routes` sees it: its route in that family, and only that family's parameters.
pub fn resolve(action: &'static ActionSpec, routes: Routes) -> &'static ActionSpec {
    RESOLVED
        .get(&(action.name, routes))
        .copied()
        .unwrap_or(action)
}

/// [`lookup`] under a route family (`http` included).
pub fn lookup_for(name: &str, routes: Routes) -> Option<&'static ActionSpec> {
    if name == HTTP.name {
        return Some(&HTTP);
    }
    lookup(name).map(|a| resolve(a, routes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Location;

    #[test]
    fn every_successor_names_an_action_with_the_same_placeholders() {
        for s in &SUCCESSORS {
            let a = lookup(s.action).expect("successor of a catalog action");
            let holes = |p: &str| -> Vec<String> {
                p.split('/')
                    .filter(|x| x.starts_with('{'))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(holes(a.path), holes(s.path), "{}", s.action);
            assert_eq!(a.method, s.method, "{}", s.action);
            assert_ne!(a.path, s.path, "{}", s.action);
        }
    }

    #[test]
    fn families_differ_in_route_and_parameters() {
        let doc = lookup_for("panel.list_cards", Routes::Documented).unwrap();
        let node = lookup_for("panel.list_cards", Routes::Node).unwrap();
        assert_eq!(doc.path, "/crm/v2/panel/card");
        assert_eq!(node.path, "/crm/v1/panel/card");
        assert!(doc.param("statuses").is_some() && doc.param("include_archived").is_none());
        assert!(node.param("include_archived").is_some() && node.param("statuses").is_none());
        let upd = lookup_for("panel.update_card", Routes::Documented).unwrap();
        assert_eq!(upd.path, "/crm/v3/panel/card/{card_id}");
        assert!(upd.param("archived").is_none());
        assert_eq!(
            upd.param("status").unwrap().location,
            Location::Body("/status")
        );
        // The 29 others are the very same spec either way.
        let a = lookup("session.complete").unwrap();
        assert!(std::ptr::eq(resolve(a, Routes::Documented), a));
        assert!(std::ptr::eq(resolve(a, Routes::Node), a));
        assert_eq!(
            actions()
                .iter()
                .filter(|a| resolve(a, Routes::Documented).path != a.path)
                .count(),
            10
        );
    }
}
