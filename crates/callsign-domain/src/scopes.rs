//! Management API scopes (names from Auth0's Management API, reference §2 and §12).

pub const READ_CLIENTS: &str = "read:clients";
pub const CREATE_CLIENTS: &str = "create:clients";
pub const UPDATE_CLIENTS: &str = "update:clients";
pub const DELETE_CLIENTS: &str = "delete:clients";
pub const UPDATE_CLIENT_KEYS: &str = "update:client_keys";
pub const READ_CLIENT_GRANTS: &str = "read:client_grants";
pub const CREATE_CLIENT_GRANTS: &str = "create:client_grants";
pub const UPDATE_CLIENT_GRANTS: &str = "update:client_grants";
pub const DELETE_CLIENT_GRANTS: &str = "delete:client_grants";
pub const READ_USERS: &str = "read:users";
pub const CREATE_USERS: &str = "create:users";
pub const UPDATE_USERS: &str = "update:users";
pub const DELETE_USERS: &str = "delete:users";
pub const READ_LOGS: &str = "read:logs";
pub const READ_LOGS_USERS: &str = "read:logs_users";
pub const READ_TENANT_SETTINGS: &str = "read:tenant_settings";
pub const UPDATE_TENANT_SETTINGS: &str = "update:tenant_settings";

/// Every scope the Management API knows; the bootstrap client holds all of them.
pub const ALL_MANAGEMENT: &[&str] = &[
    READ_CLIENTS,
    CREATE_CLIENTS,
    UPDATE_CLIENTS,
    DELETE_CLIENTS,
    UPDATE_CLIENT_KEYS,
    READ_CLIENT_GRANTS,
    CREATE_CLIENT_GRANTS,
    UPDATE_CLIENT_GRANTS,
    DELETE_CLIENT_GRANTS,
    READ_USERS,
    CREATE_USERS,
    UPDATE_USERS,
    DELETE_USERS,
    READ_LOGS,
    READ_LOGS_USERS,
    READ_TENANT_SETTINGS,
    UPDATE_TENANT_SETTINGS,
];

pub fn is_management_scope(s: &str) -> bool {
    ALL_MANAGEMENT.contains(&s)
}

/// Split a space-separated scope string, dropping empties and duplicates, keeping order.
pub fn split(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split_ascii_whitespace() {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_dedups() {
        assert_eq!(split(" a  b a "), vec!["a", "b"]);
        assert!(is_management_scope("read:users"));
        assert!(!is_management_scope("read:everything"));
    }
}
