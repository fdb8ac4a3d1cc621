//! Roles of API keys and dashboard users, and what each may do. The API asks `Role::allows`
//! before touching anything; this is the one place the policy is written.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in its tenant, including keys and users.
    Admin,
    /// Webhooks, sources, events and retries; reads everything but keys and users.
    Editor,
    /// Reads only.
    Viewer,
    /// Only `POST /api/v1/events*`.
    Publisher,
}

/// What a request wants to do, coarse enough to keep the policy readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read webhooks, events, deliveries, sources, stats.
    Read,
    /// Create or change webhooks and sources, retry deliveries.
    Write,
    /// Emit events.
    Publish,
    /// Manage API keys and dashboard users.
    ManageAccess,
}

impl Role {
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Editor => matches!(action, Read | Write | Publish),
            Role::Viewer => matches!(action, Read),
            Role::Publisher => matches!(action, Publish),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::Publisher => "publisher",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "admin" => Role::Admin,
            "editor" => Role::Editor,
            "viewer" => Role::Viewer,
            "publisher" => Role::Publisher,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let table = [
            (Role::Admin, [true, true, true, true]),
            (Role::Editor, [true, true, true, false]),
            (Role::Viewer, [true, false, false, false]),
            (Role::Publisher, [false, false, true, false]),
        ];
        for (role, expected) in table {
            let got = [
                Action::Read,
                Action::Write,
                Action::Publish,
                Action::ManageAccess,
            ]
            .map(|a| role.allows(a));
            assert_eq!(got, expected, "{role:?}");
        }
    }
}
