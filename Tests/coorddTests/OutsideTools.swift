import Events
import Foundation
import Testing

/// The outside judges the suite runs (libhxl, libseccomp, openapi-spec-validator, schemathesis, promtool, nginx),
/// installed by `scripts/ensure-test-tools.sh`, which `make test` runs.
enum OutsideTools {
    static var repo: String {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.path
    }

    /// The python with the PyPI tools: `COORD_TEST_PYTHON`, else the tools' virtual environment when it exists,
    /// else `python3` from PATH.
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["COORD_TEST_PYTHON"], !p.isEmpty { return p }
        let venv = repo + "/.build-tools/venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/env python3"
    }

    static var pythonArgv: [String] { python.split(separator: " ").map(String.init) }

    /// The executable `name` from PATH or the usual system directories, nil when absent.
    static func find(_ name: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/sbin"]
        return dirs.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// A judge is missing: a failure under `make test` (COORD_REQUIRE_TOOLS=1, which installs them), a loud skip
    /// elsewhere.
    static func missing(_ what: String) {
        if ProcessInfo.processInfo.environment["COORD_REQUIRE_TOOLS"] == "1" {
            Issue.record("\(what) is not installed: scripts/ensure-test-tools.sh installs it")
        } else {
            print("SKIPPED: \(what) is not installed; `make test` installs it (scripts/ensure-test-tools.sh)")
        }
    }

    /// A coordd or coordctl binary of this build.
    static func binary(_ name: String) -> String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return [dir, dir.deletingLastPathComponent()].map { $0.appendingPathComponent(name).path }
            .first { FileManager.default.isExecutableFile(atPath: $0) } ?? dir.appendingPathComponent(name).path
    }

    /// What gzip(1), a judge no one here wrote, reads back from `bytes`.
    static func gunzip(_ bytes: [UInt8]) async throws -> Subprocess.Output {
        let file = NSTemporaryDirectory() + "coord-gzip-\(UUID().uuidString).gz"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try await runBlocking { try Subprocess.run(["/bin/sh", "-c", "gzip -dc \"$0\"", file]) }
    }
}
