import Coordination
import Events
import Foundation
import Testing
import TestSupport
@testable import coordd

/// The OpenAPI document judged by tools no one here wrote: openapi-spec-validator reads it, and schemathesis
/// generates requests from it against a coordd holding the demo scenario and checks every answer against it
/// (no server error, no status it does not list, no body off its schema, no content type it does not list).
@Suite("The contract, judged from outside")
struct ContractTests {
    static func tool(_ module: String) async throws -> Bool {
        let argv = OutsideTools.pythonArgv + ["-c", "import \(module)"]
        return try await runBlocking { try Subprocess.run(argv) }.status == 0
    }

    @Test("openapi-spec-validator accepts the served document")
    func specValidator() async throws {
        guard try await Self.tool("openapi_spec_validator") else { OutsideTools.missing("openapi-spec-validator (PyPI)"); return }
        let d = try await TestDaemon()
        defer { Task { await d.stop() } }
        let document = try await d.call("GET", "/v1/openapi.json").body
        let file = NSTemporaryDirectory() + "openapi-\(UUID().uuidString).json"
        try document.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let argv = OutsideTools.pythonArgv + ["-m", "openapi_spec_validator", file]
        let out = try await runBlocking { try Subprocess.run(argv) }
        #expect(out.status == 0, "\(out.output)")
        // Typed: every command body has typed properties and its required fields.
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any])
        let dispatch = try #require(((((doc["paths"] as? [String: Any])?["/v1/stock/dispatches"] as? [String: Any])?["post"] as? [String: Any])?["requestBody"] as? [String: Any]))
        let schema = try #require((((dispatch["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"] as? [String: Any]))
        #expect((schema["required"] as? [String])?.sorted() == ["destination", "item", "quantity", "warehouse"])
        let quantity = try #require((schema["properties"] as? [String: Any])?["quantity"] as? [String: Any])
        #expect(quantity["type"] as? String == "integer" && quantity["minimum"] as? Int == 1)
    }

    @Test("schemathesis against a coordd holding the demo: no server error, no undocumented status, no answer off its schema")
    func schemathesis() async throws {
        guard try await Self.tool("schemathesis") else { OutsideTools.missing("schemathesis (PyPI)"); return }
        // As deployed: with a key for webhook secrets, and private addresses refused.
        let d = try await TestDaemon(webhooks: try WebhookTests.settings(allowPrivate: false))
        defer { Task { await d.stop() } }
        _ = try await DemoScenario.load(into: d.service)
        try await d.settle()
        let st = URL(fileURLWithPath: OutsideTools.pythonArgv[0]).deletingLastPathComponent().appendingPathComponent("st").path
        let examples = ProcessInfo.processInfo.environment["COORD_SCHEMATHESIS_EXAMPLES"] ?? "8"
        let argv = [st, "run", "http://127.0.0.1:\(d.port)/v1/openapi.json",
                    "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                    "-H", "Authorization: Bearer \(d.admin)",
                    "--exclude-path", "/v1/events/live",
                    "--hypothesis-max-examples", examples, "--hypothesis-derandomize",
                    "--request-timeout", "10000", "--workers", "2", "--no-color", "--experimental=openapi-3.1"]
        var env = ProcessInfo.processInfo.environment
        env["SCHEMATHESIS_TELEMETRY"] = "false"
        let environment = env
        let out = try await runBlocking { try Subprocess.run(argv, environment: environment) }
        // The failures section, where there is one (the warnings after it are long).
        let failures = out.output.range(of: "FAILURES").map { String(out.output[$0.lowerBound...].prefix(6000)) } ?? String(out.output.suffix(6000))
        #expect(out.status == 0, "\(failures)")
        print(out.output.split(separator: "\n").suffix(12).joined(separator: "\n"))
    }
}
