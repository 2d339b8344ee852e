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
pub const READ_GUARDIAN_FACTORS: &str = "read:guardian_factors";
pub const UPDATE_GUARDIAN_FACTORS: &str = "update:guardian_factors";
pub const READ_MFA_POLICIES: &str = "read:mfa_policies";
pub const UPDATE_MFA_POLICIES: &str = "update:mfa_policies";
pub const READ_GUARDIAN_ENROLLMENTS: &str = "read:guardian_enrollments";
pub const DELETE_GUARDIAN_ENROLLMENTS: &str = "delete:guardian_enrollments";
pub const CREATE_GUARDIAN_ENROLLMENT_TICKETS: &str = "create:guardian_enrollment_tickets";
pub const READ_AUTHENTICATION_METHODS: &str = "read:authentication_methods";
pub const CREATE_AUTHENTICATION_METHODS: &str = "create:authentication_methods";
pub const UPDATE_AUTHENTICATION_METHODS: &str = "update:authentication_methods";
pub const DELETE_AUTHENTICATION_METHODS: &str = "delete:authentication_methods";
pub const CREATE_PHONE_PROVIDERS: &str = "create:phone_providers";
pub const READ_PHONE_PROVIDERS: &str = "read:phone_providers";
pub const UPDATE_PHONE_PROVIDERS: &str = "update:phone_providers";
pub const DELETE_PHONE_PROVIDERS: &str = "delete:phone_providers";
pub const CREATE_PHONE_TEMPLATES: &str = "create:phone_templates";
pub const READ_PHONE_TEMPLATES: &str = "read:phone_templates";
pub const UPDATE_PHONE_TEMPLATES: &str = "update:phone_templates";
pub const DELETE_PHONE_TEMPLATES: &str = "delete:phone_templates";
/// The database connection (`/api/v2/connections`).
pub const READ_CONNECTIONS: &str = "read:connections";
pub const UPDATE_CONNECTIONS: &str = "update:connections";
pub const READ_ATTACK_PROTECTION: &str = "read:attack_protection";
pub const UPDATE_ATTACK_PROTECTION: &str = "update:attack_protection";
pub const READ_ANOMALY_BLOCKS: &str = "read:anomaly_blocks";
pub const DELETE_ANOMALY_BLOCKS: &str = "delete:anomaly_blocks";
/// Callsign's own: read the development provider's inbox (`GET /api/v2/dev-inbox`).
pub const READ_DEV_INBOX: &str = "read:dev_inbox";

/// Resource servers (`/api/v2/resource-servers`): the operator's own APIs, and the Management API itself.
pub const READ_RESOURCE_SERVERS: &str = "read:resource_servers";
pub const CREATE_RESOURCE_SERVERS: &str = "create:resource_servers";
pub const UPDATE_RESOURCE_SERVERS: &str = "update:resource_servers";
pub const DELETE_RESOURCE_SERVERS: &str = "delete:resource_servers";
/// Read scopes of the Auth0 resource types Callsign does not have; their endpoints answer as an Auth0 tenant with
/// none of them (empty lists, default settings), so that configuration-as-code tools export and import cleanly.
pub const READ_RULES: &str = "read:rules";
pub const READ_RULES_CONFIGS: &str = "read:rules_configs";
pub const READ_HOOKS: &str = "read:hooks";
pub const READ_ACTIONS: &str = "read:actions";
pub const READ_ORGANIZATIONS: &str = "read:organizations";
pub const READ_ROLES: &str = "read:roles";
pub const READ_CUSTOM_DOMAINS: &str = "read:custom_domains";
pub const READ_PROMPTS: &str = "read:prompts";
pub const UPDATE_PROMPTS: &str = "update:prompts";
pub const READ_BRANDING: &str = "read:branding";
pub const UPDATE_BRANDING: &str = "update:branding";
pub const READ_MIGRATIONS: &str = "read:migrations";
pub const UPDATE_MIGRATIONS: &str = "update:migrations";
pub const READ_FORMS: &str = "read:forms";
pub const READ_FLOWS: &str = "read:flows";
pub const READ_FLOWS_VAULT_CONNECTIONS: &str = "read:flows_vault_connections";
pub const READ_SELF_SERVICE_PROFILES: &str = "read:self_service_profiles";
pub const READ_NETWORK_ACLS: &str = "read:network_acls";
pub const READ_TOKEN_EXCHANGE_PROFILES: &str = "read:token_exchange_profiles";
pub const READ_USER_ATTRIBUTE_PROFILES: &str = "read:user_attribute_profiles";
pub const READ_CONNECTION_PROFILES: &str = "read:connection_profiles";
pub const READ_EVENT_STREAMS: &str = "read:event_streams";
pub const READ_LOG_STREAMS: &str = "read:log_streams";
pub const CREATE_LOG_STREAMS: &str = "create:log_streams";
pub const UPDATE_LOG_STREAMS: &str = "update:log_streams";
pub const DELETE_LOG_STREAMS: &str = "delete:log_streams";
/// Callsign's own: the phone destination policy (`/api/v2/guardian/factors/phone/destination-policy`).
pub const READ_PHONE_DESTINATION_POLICY: &str = "read:phone_destination_policy";
pub const UPDATE_PHONE_DESTINATION_POLICY: &str = "update:phone_destination_policy";
/// Callsign's own: SMS-pumping detection (`/api/v2/guardian/factors/phone/pumping-detection`).
pub const READ_PHONE_PUMPING_DETECTION: &str = "read:phone_pumping_detection";
pub const UPDATE_PHONE_PUMPING_DETECTION: &str = "update:phone_pumping_detection";
/// Callsign's own: usage triggers, prices and the alert webhook (`/api/v2/guardian/factors/phone/usage`).
pub const READ_PHONE_USAGE: &str = "read:phone_usage";
pub const UPDATE_PHONE_USAGE: &str = "update:phone_usage";

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
    READ_GUARDIAN_FACTORS,
    UPDATE_GUARDIAN_FACTORS,
    READ_MFA_POLICIES,
    UPDATE_MFA_POLICIES,
    READ_GUARDIAN_ENROLLMENTS,
    DELETE_GUARDIAN_ENROLLMENTS,
    CREATE_GUARDIAN_ENROLLMENT_TICKETS,
    READ_AUTHENTICATION_METHODS,
    CREATE_AUTHENTICATION_METHODS,
    UPDATE_AUTHENTICATION_METHODS,
    DELETE_AUTHENTICATION_METHODS,
    CREATE_PHONE_PROVIDERS,
    READ_PHONE_PROVIDERS,
    UPDATE_PHONE_PROVIDERS,
    DELETE_PHONE_PROVIDERS,
    CREATE_PHONE_TEMPLATES,
    READ_PHONE_TEMPLATES,
    UPDATE_PHONE_TEMPLATES,
    DELETE_PHONE_TEMPLATES,
    READ_DEV_INBOX,
    READ_CONNECTIONS,
    UPDATE_CONNECTIONS,
    READ_ATTACK_PROTECTION,
    UPDATE_ATTACK_PROTECTION,
    READ_ANOMALY_BLOCKS,
    DELETE_ANOMALY_BLOCKS,
    READ_RESOURCE_SERVERS,
    CREATE_RESOURCE_SERVERS,
    UPDATE_RESOURCE_SERVERS,
    DELETE_RESOURCE_SERVERS,
    READ_RULES,
    READ_RULES_CONFIGS,
    READ_HOOKS,
    READ_ACTIONS,
    READ_ORGANIZATIONS,
    READ_ROLES,
    READ_CUSTOM_DOMAINS,
    READ_PROMPTS,
    UPDATE_PROMPTS,
    READ_BRANDING,
    UPDATE_BRANDING,
    READ_MIGRATIONS,
    UPDATE_MIGRATIONS,
    READ_FORMS,
    READ_FLOWS,
    READ_FLOWS_VAULT_CONNECTIONS,
    READ_SELF_SERVICE_PROFILES,
    READ_NETWORK_ACLS,
    READ_TOKEN_EXCHANGE_PROFILES,
    READ_USER_ATTRIBUTE_PROFILES,
    READ_CONNECTION_PROFILES,
    READ_EVENT_STREAMS,
    READ_LOG_STREAMS,
    CREATE_LOG_STREAMS,
    UPDATE_LOG_STREAMS,
    DELETE_LOG_STREAMS,
    READ_PHONE_DESTINATION_POLICY,
    UPDATE_PHONE_DESTINATION_POLICY,
    READ_PHONE_PUMPING_DETECTION,
    UPDATE_PHONE_PUMPING_DETECTION,
    READ_PHONE_USAGE,
    UPDATE_PHONE_USAGE,
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
