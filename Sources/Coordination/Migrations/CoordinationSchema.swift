import Events

/// The domain's own tables (outside the read models, which the projections create): tokens, and what later
/// versions add. One file per shipped version, frozen.
public enum CoordinationSchema {
    public static let migrations = MigrationSet(component: "coordination", migrations: [
        Migration(version: 1, name: "api tokens", sql: v1),
    ], appGrants: [
        ("SELECT", "TABLE api_tokens"),
    ])
}
