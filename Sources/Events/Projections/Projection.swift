import Foundation

/// A read model: an in-memory fold of events, and the tables it keeps in PostgreSQL.
///
/// The fold (`ProjectionState.apply`) is the only logic: the live runner, a full rebuild and replay
/// (state as of any moment, in memory) all use it, so they cannot disagree.
public protocol ProjectionDefinition: Sendable {
    /// Stable name, e.g. `stock`.
    var name: String { get }
    /// Bump when tables or the fold change: the runner then rebuilds the projection by itself.
    var version: Int { get }
    /// The tables it owns (base names; a rebuild builds `<name>__shadow` and swaps).
    var tables: [String] { get }
    /// The event types it reads (nil: all).
    var eventTypes: [String]? { get }
    /// The top-level metadata keys its fold reads (nil, the default: all). The runner and a rebuild then read only
    /// these of each event's metadata (`EventFilter.metadataKeys`).
    var metadataKeys: [String]? { get }
    /// DDL creating its tables with `suffix` appended to each table name. Constant text only.
    /// (A rebuild runs the `CREATE INDEX` statements after it has copied the rows in.)
    func createTables(suffix: String) -> [String]
    /// An empty state.
    func makeState() -> any ProjectionState
    /// The state as stored in its tables (after a restart).
    func loadState(_ connection: PostgresConnection, suffix: String) throws -> any ProjectionState
}

extension ProjectionDefinition {
    public var metadataKeys: [String]? { nil }
    /// The filter of its reads: its event types, and of their metadata the keys it reads.
    var readFilter: EventFilter { EventFilter(types: eventTypes, metadataKeys: metadataKeys) }
}

/// The mutable fold of one projection. Used by one task at a time.
public protocol ProjectionState: AnyObject {
    /// Applies one event. Throws when the event cannot be understood: the runner then stops this
    /// projection at that event and reports it, and the others go on.
    func apply(_ event: RecordedEvent) throws
    /// Writes the rows changed since the last flush (upserts, deletes, appended rows), then forgets them.
    func flush(_ connection: PostgresConnection, suffix: String) throws
    /// Writes every row (into freshly created, empty tables) with COPY.
    func copyAll(_ connection: PostgresConnection, suffix: String) throws
}

/// A state whose fold has two steps: decoding an event (pure, any thread) and applying what it decoded. A rebuild
/// then decodes the next batch on one thread while the fold applies the current one on another, rather than
/// doing both on one core while the other waits.
public protocol DecodingProjectionState<Decoded>: ProjectionState {
    associatedtype Decoded: Sendable
    /// What `apply(_:)` would decode; it must depend on the event alone.
    static func decode(_ event: RecordedEvent) throws -> Decoded
    func apply(_ decoded: Decoded, _ event: RecordedEvent) throws
}

extension DecodingProjectionState {
    public func apply(_ event: RecordedEvent) throws { try apply(Self.decode(event), event) }
}

/// A state that also appends rows to an append-only table (a ledger), which a rebuild writes out while the fold is
/// still running: at every batch boundary it takes what has piled up and COPYs it into the shadow table on another
/// connection, so the rows neither pile up in memory nor wait for the end of the fold to be written.
public protocol AppendingProjectionState: ProjectionState {
    /// Rows appended and not yet taken.
    var appendedCount: Int { get }
    /// Hands over the rows appended so far that are final (a state may hold back a row a later event may still
    /// change), as a job that COPYs them into the tables with `suffix`; the state forgets them. `copyAll` then writes
    /// only what was not taken. Called between two events, never during `apply`.
    func takeAppended(suffix: String) -> @Sendable (PostgresConnection) throws -> Void
}

/// Checkpoints and status of every projection, in one table (created by the event store's migrations).
public struct ProjectionStatus: Sendable, Equatable {
    public let name: String
    public let version: Int
    public let checkpoint: Int64
    public let status: String
    public let error: String?
    public let errorPosition: Int64?
    public let updatedAt: Date?
    public let rebuiltAt: Date?
    /// Head position minus checkpoint.
    public let lagEvents: Int64
    /// How long ago the oldest unapplied event was recorded (0 when caught up).
    public let lagSeconds: Double
    /// Whether this process leads it.
    public var leader: Bool = false
}
