import Events
import Foundation

/// A projection whose tables are `ReadModelTable` declarations: its table names and DDL come from them.
protocol ReadModelProjection: ProjectionDefinition {
    var readModelTables: [any AnyReadModelTable] { get }
}

extension ReadModelProjection {
    public var tables: [String] { readModelTables.map(\.name) }
    public func createTables(suffix: String) -> [String] { readModelTables.flatMap { $0.createStatements(suffix: suffix) } }
}

extension RecordedEvent {
    /// The metadata's `actor` (who issued the command), read without Foundation's decoder: folds read it per event.
    var actor: String? {
        guard case .string(let actor)? = (try? JSONValue.parse(Data(metadata.text.utf8)))?["actor"] else { return nil }
        return actor
    }
}
