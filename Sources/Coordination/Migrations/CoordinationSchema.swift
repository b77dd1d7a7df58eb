import Events

/// The domain's own tables (outside the read models, which the projections create): tokens, browser sessions,
/// and what later versions add. One file per shipped version, frozen.
public enum CoordinationSchema {
    public static let migrations = MigrationSet(component: "coordination", migrations: [
        Migration(version: 1, name: "api tokens", sql: v1),
        Migration(version: 2, name: "browser sessions", sql: v2),
        Migration(version: 3, name: "alerts and webhooks", sql: v3),
        Migration(version: 4, name: "token expiry, personal-data access and its log", sql: v4),
        Migration(version: 5, name: "scoped tokens", sql: v5),
    ], appGrants: [
        ("SELECT", "TABLE api_tokens"),
        ("SELECT, INSERT, DELETE", "TABLE api_sessions"),
        ("SELECT, INSERT", "TABLE alert_transitions, webhook_attempts"),
        ("SELECT, UPDATE", "TABLE alert_outbox"),
        ("SELECT, INSERT, UPDATE, DELETE", "TABLE webhooks, webhook_deliveries"),
        ("SELECT, INSERT", "TABLE personal_data_reads"),
    ])
}
