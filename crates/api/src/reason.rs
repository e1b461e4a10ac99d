//! Why a Route is (not) programmed: the `reason` of its Ready condition and of the Events about it. One
//! vocabulary for the translation (which finds Invalid, Conflict and Unsupported) and the controller
//! (which adds Conflict with foreign objects, ApplyFailed, Rejected and Programmed).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Every child of the route is written and up to date (Ready=True).
    Programmed,
    /// The route itself is wrong (weights, names, path, url, internal flag disagreeing with its FQDN).
    Invalid,
    /// Something else holds what the route needs: a destination guid or the FQDN held by another route,
    /// or an object with the child's name that is not owned by a Route.
    Conflict,
    /// The API refused or failed a write of one of the route's children; the controller retries.
    ApplyFailed,
    /// The route passes every check but the configured routing API cannot express it (in gateway-api
    /// mode: an internal route, or more than 16 destinations).
    Unsupported,
    /// Gateway-api mode: the route's HTTPRoute is written, but the implementation serving the configured
    /// Gateway reports it not `Accepted`, or its references not resolved (`ResolvedRefs`), for that
    /// Gateway; the message is the implementation's. Fixed on the Gateway's side (listeners,
    /// `allowedRoutes`, supported features) or by the implementation.
    Rejected,
}

impl Reason {
    /// As written in the condition and in Events (CamelCase).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Programmed => "Programmed",
            Reason::Invalid => "Invalid",
            Reason::Conflict => "Conflict",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::Unsupported => "Unsupported",
            Reason::Rejected => "Rejected",
        }
    }

    /// Only a programmed route is Ready.
    pub fn is_ready(self) -> bool {
        self == Reason::Programmed
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_programmed_is_ready_and_names_are_camel_case() {
        let all = [
            Reason::Programmed,
            Reason::Invalid,
            Reason::Conflict,
            Reason::ApplyFailed,
            Reason::Unsupported,
            Reason::Rejected,
        ];
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "Programmed",
                "Invalid",
                "Conflict",
                "ApplyFailed",
                "Unsupported",
                "Rejected"
            ]
        );
        assert_eq!(
            all.iter().filter(|r| r.is_ready()).collect::<Vec<_>>(),
            [&Reason::Programmed]
        );
    }
}
