import Events

/// The emergency-response domain: commands, events, rules and projections.
/// Everything domain-specific lives here; `Events` stays generic.
public enum Coordination {
    /// The product version, shown by `--version`.
    public static let version = "0.1.0"
    /// Every migration set coord needs, in order.
    public static let migrationSets: [MigrationSet] = [EventStoreSchema.migrations, CoordinationSchema.migrations]
}
