import Coordination
import Events
import Foundation

/// The database a coordctl command works on, and whether the command started the embedded cluster
/// (in which case it stops it again when done, leaving the machine as it found it).
struct Session {
    let target: DatabaseLocator.Target
    let pool: PostgresPool
    let startedEmbedded: Bool

    /// Opens the configured database; starts the embedded cluster when none is configured.
    static func open(schema: String? = nil, poolSize: Int = 4, startEmbedded: Bool = true) throws -> Session {
        let target = DatabaseLocator.resolve()
        let (connection, started) = try DatabaseLocator.connectionString(for: target, startEmbedded: startEmbedded)
        let configuration = try PostgresConfiguration(connectionString: connection, schema: schema ?? ProcessInfo.processInfo.environment["COORD_SCHEMA"].flatMap { $0.isEmpty ? nil : $0 },
                                                      applicationName: "coordctl", poolSize: poolSize)
        return Session(target: target, pool: PostgresPool(configuration: configuration), startedEmbedded: started)
    }

    func close() {
        pool.close()
        if startedEmbedded, case .embedded(let embedded) = target {
            try? embedded.stop()
        }
    }
}

/// Human output helpers: aligned tables, no colour unless stdout is a terminal and NO_COLOR is unset.
enum Output {
    static func table(_ headers: [String], _ rows: [[String]]) -> String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }

    static func keyValues(_ pairs: [(String, String)]) -> String {
        let width = (pairs.map(\.0.count).max() ?? 0) + 2
        return pairs.map { ($0.0 + ":").padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
    }

    static func json(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Escape codes only for a terminal that understands them: not when stderr is a file or pipe, not for
    /// TERM=dumb (Emacs shells, some CI consoles), not when NO_COLOR is set.
    static var stderrIsTTY: Bool {
        let env = ProcessInfo.processInfo.environment
        return isatty(2) == 1 && env["TERM"] != "dumb" && env["NO_COLOR"] == nil
    }

    /// Progress on stderr when it is a terminal: rewritten in place, cleared by `progressDone`.
    static func progress(_ text: String) {
        guard stderrIsTTY else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
    }

    static func progressDone() {
        guard stderrIsTTY else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

extension CommandSpec.Option {
    /// `--json`, on every command with output a script may read.
    static let json = CommandSpec.Option("json", help: "Machine-readable output.")
    /// `--schema`, on every benchmark.
    static let scratchSchema = CommandSpec.Option("schema", value: "NAME", help: "Scratch schema, dropped and recreated (default coord_bench).")
}

extension PostgresConnection {
    /// `query`, prepared on the connection or run unnamed (parsed and planned at the call): the benchmarks'
    /// two raw INSERT baselines.
    @discardableResult
    func query(_ sql: SQL, prepared: Bool) throws -> PostgresResult {
        let before = preparesStatements
        preparesStatements = prepared
        defer { preparesStatements = before }
        return try query(sql)
    }
}
