import Coordination
import Foundation
import Testing

/// Every input the fuzzers were seeded with or found crashing, run through the same checks (FuzzTargets): a
/// crash found once stays fixed. `scripts/fuzz.sh` adds crashing inputs to Tests/Fuzz/crashes/TARGET/.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ kind: String, _ target: String) -> [URL] {
        let dir = root.appendingPathComponent(kind).appendingPathComponent(target)
        return ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? [])
            .filter { !$0.lastPathComponent.hasPrefix(".") }.sorted { $0.path < $1.path }
    }

    @Test("every seed and every kept crash passes its target's checks", arguments: FuzzTargets.names)
    func replay(_ target: String) throws {
        let seeds = Self.inputs("corpus", target)
        #expect(!seeds.isEmpty, "each target has seeds")
        for file in seeds + Self.inputs("crashes", target) {
            FuzzTargets.run(target, Array(try Data(contentsOf: file)))
        }
    }

    @Test("the command seeds still pick the command they are named for (the first byte indexes the catalogue)")
    func commandSeeds() throws {
        for file in Self.inputs("corpus", "command") {
            let first = try #require(try Data(contentsOf: file).first)
            #expect(CommandCatalog.names[Int(first) % CommandCatalog.names.count] == file.lastPathComponent)
        }
    }

    @Test("each target refuses what it should without trapping: inputs the campaign found")
    func knownHoles() {
        FuzzTargets.run("command", [13] + Array(#"{"warehouse":"MNL","item":"KIT","delta":-9223372036854775808,"reason":"lost"}"#.utf8))
        FuzzTargets.run("request", Array("GET /?a=%00 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".utf8))
        FuzzTargets.run("request", Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n".utf8))
        FuzzTargets.run("json", Array(#"{"a":1,"a":2}"#.utf8))
        FuzzTargets.run("import-line", Array(#"{"command":"deployment.request","person":"P","response":"R","profile":"WASH","start":"0000-01-01","end":"0000-01-02"}"#.utf8))
    }
}
