import Foundation

/// Rebuilds: fold the log into shadow tables while the live ones serve reads, then swap them in one short transaction.
extension ProjectionRunner {
    /// Folds every event up to the head into a fresh state, writes it into shadow tables with COPY while the
    /// live tables keep serving reads, catches up with what arrived meanwhile, and swaps the tables and the
    /// checkpoint in one short transaction. Only the projection's leader (or a process holding its lock)
    /// may call this. Returns the new state and checkpoint.
    public static func rebuild(_ def: any ProjectionDefinition, store: EventStore, batchSize: Int = 5000,
                               progress: (@Sendable (Int64, Int64) -> Void)? = nil) async throws -> (any ProjectionState, Int64) {
        let state = def.makeState()
        let box = SendableBox(state)
        let filter = EventFilter(types: def.eventTypes)
        var position: Int64 = 0
        var head = try await store.headPosition()
        // 1. Fold history in memory, batch by batch (no long transaction).
        position = try await fold(box, store: store, from: 0, to: head, filter: filter, batchSize: batchSize, progress: progress)
        // 2. Fill the shadow tables.
        let shadow = "__shadow"
        try await store.pool.withConnection { c in
            try c.transaction { c in
                for table in def.tables { try c.execute(unsafe: "DROP TABLE IF EXISTS \(table)\(shadow)") }
                // Secondary indexes after the rows: one sorted build each, not an index entry per copied row.
                let ddl = def.createTables(suffix: shadow)
                let isIndex = { (s: String) in s.hasPrefix("CREATE INDEX") || s.hasPrefix("CREATE UNIQUE INDEX") }
                for statement in ddl where !isIndex(statement) { try c.execute(unsafe: statement) }
                try box.value.copyAll(c, suffix: shadow)
                for statement in ddl where isIndex(statement) { try c.execute(unsafe: statement) }
                // Fresh tables have no statistics: the first reads after the swap would be planned blind.
                for table in def.tables { try c.execute(unsafe: "ANALYZE \(table)\(shadow)") }
            }
        }
        // 3. Catch up with what was appended meanwhile (kept in memory, flushed in the swap).
        head = try await store.headPosition()
        position = try await fold(box, store: store, from: position, to: head, filter: filter, batchSize: batchSize, progress: progress)
        // 4. Swap: readers wait for this transaction's locks and then see the new tables, never an empty one.
        let name = def.name
        let version = def.version
        let tables = def.tables
        let final = position
        try await store.pool.withConnection { c in
            try c.transaction { c in
                for table in tables {
                    try c.execute(unsafe: "DROP TABLE IF EXISTS \(table)")
                    try c.execute(unsafe: "ALTER TABLE \(table)\(shadow) RENAME TO \(table)")
                    // Index names (from the catalog, not input) lose their shadow suffix too.
                    let indexes = try c.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = \(table)")
                    for row in indexes.rows {
                        let index: String = try row.decode(0)
                        if index.contains(shadow) {
                            let renamed = index.replacingOccurrences(of: shadow, with: "")
                            try c.execute(unsafe: "ALTER INDEX \(try c.quoteIdentifier(index)) RENAME TO \(try c.quoteIdentifier(renamed))")
                        }
                    }
                }
                try box.value.flush(c, suffix: "")
                try c.query("""
                    INSERT INTO projection_checkpoints (name, version, position, status, rebuilt_at, updated_at)
                    VALUES (\(name), \(version), \(final), 'running', now(), now())
                    ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position, status = 'running',
                        error = NULL, error_position = NULL, rebuilt_at = now(), updated_at = now()
                    """)
            }
        }
        return (state, final)
    }

    static func fold(_ box: SendableBox<any ProjectionState>, store: EventStore, from: Int64, to: Int64, filter: EventFilter,
                     batchSize: Int, progress: (@Sendable (Int64, Int64) -> Void)?) async throws -> Int64 {
        guard from < to else { return to }
        try await store.forEach(after: from, filter: filter, until: .position(to), batchSize: batchSize,
                                afterBatch: { progress?($0, to) }) { event in
            do { try box.value.apply(event) } catch {
                throw HandlerFailure(position: event.position, message: String(describing: error))
            }
        }
        return to
    }
}
