import Events
import Foundation

/// A projection whose tables are `ReadModelTable` declarations: its table names and DDL come from them.
protocol ReadModelProjection: ProjectionDefinition {
    var readModelTables: [any AnyReadModelTable] { get }
}

/// The metadata keys the read-model folds read (see `ReadModelProjection.metadataKeys`), live, rebuilt or replayed.
let foldMetadataKeys = ["actor", "schema_version"]

extension ReadModelProjection {
    /// What the folds read of an event's metadata: who (`RecordedEvent.actor`: the stock card's and a task comment's
    /// author) and the payload's schema version (`EventCodec`). A fold that needs another key adds it here; a read
    /// leaves every other key out.
    public var metadataKeys: [String]? { foldMetadataKeys }
    public var tables: [String] { readModelTables.map(\.name) }
    public func createTables(suffix: String) -> [String] { readModelTables.flatMap { $0.createStatements(suffix: suffix) } }
}

extension RecordedEvent {
    /// The metadata's `actor` (who issued the command), read without Foundation's decoder: folds read it per event.
    /// Stored metadata is jsonb's text, whose keys come shortest first, so `actor` leads unless a shorter key
    /// does: text that starts `{"actor": "` holds the top-level actor up to the next quote, when no escape comes
    /// before it. Anything else is parsed.
    var actor: String? {
        var text = metadata.text
        let direct: String?? = text.withUTF8 { bytes in
            let prefix: StaticString = #"{"actor": ""#
            guard bytes.count > prefix.utf8CodeUnitCount,
                  memcmp(bytes.baseAddress!, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0 else { return nil }
            let start = prefix.utf8CodeUnitCount
            var i = start
            while i < bytes.count, bytes[i] != 0x22 {
                if bytes[i] == 0x5c { return nil }  // an escape: parse
                i += 1
            }
            guard i < bytes.count else { return nil }
            return .some(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
        }
        if let direct { return direct }
        guard case .string(let actor)? = (try? JSONValue.parse(text))?["actor"] else { return nil }
        return actor
    }
}
