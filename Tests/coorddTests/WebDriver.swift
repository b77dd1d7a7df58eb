import Events
import Foundation
import TestSupport
@testable import coordd
#if canImport(Glibc)
import Glibc
#endif

/// A W3C WebDriver client for the console's browser tests: chromium driven by chromedriver (Debian's `chromium`
/// and `chromium-driver`, installed by scripts/ensure-test-tools.sh), headless. Only what the tests use: open a
/// page, find elements by CSS, type, click, read text and attributes, run a script, resize, screenshot.
final class Browser: @unchecked Sendable {
    let driver: pid_t
    let port: UInt16
    let session: String

    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// chromedriver and chromium from PATH or /usr/bin; nil when either is missing.
    static var tools: (driver: String, browser: String)? {
        guard let driver = OutsideTools.find("chromedriver") else { return nil }
        guard let browser = ["chromium", "chromium-browser", "google-chrome"].lazy.compactMap({ OutsideTools.find($0) }).first else { return nil }
        return (driver, browser)
    }

    init(width: Int = 1280, height: Int = 900) async throws {
        guard let (driverPath, browserPath) = Self.tools else { throw Failure(description: "chromium or chromedriver is missing") }
        let port = Loopback.freePort()
        self.port = port
        driver = try Subprocess.spawn([driverPath, "--port=\(port)", "--silent"], environment: ProcessInfo.processInfo.environment)
        var ready = false
        for _ in 0..<100 {
            if let r = try? await runBlocking({ try HTTPClient.call(port: port, "GET", "/status") }), r.status == 200 { ready = true; break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        guard ready else { Self.end(driver); throw Failure(description: "chromedriver did not start") }
        let profile = NSTemporaryDirectory() + "coord-chromium-\(UUID().uuidString)"
        let capabilities: [String: Any] = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:loggingPrefs": ["browser": "ALL"],
            "goog:chromeOptions": ["binary": browserPath, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=\(profile)",
                "--window-size=\(width),\(height)"]],
        ]]]
        let answer = try await Self.request(port: port, "POST", "/session", capabilities)
        guard let value = answer as? [String: Any], let id = value["sessionId"] as? String else {
            Self.end(driver)
            throw Failure(description: "no WebDriver session: \(answer)")
        }
        session = id
    }

    func quit() async {
        _ = try? await Self.request(port: port, "DELETE", "/session/\(session)", nil)
        Self.end(driver)
    }

    /// chromedriver outlives SIGTERM while it has sessions; the session is deleted first (which closes chromium).
    static func end(_ pid: pid_t) {
        _ = Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    @discardableResult
    static func request(port: UInt16, _ method: String, _ path: String, _ body: Any?) async throws -> Any {
        let text = try body.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        let r = try await runBlocking { try HTTPClient.call(port: port, method, path, headers: ["Content-Type": "application/json; charset=utf-8"], body: text, receiveTimeout: 60) }
        let json = try JSONSerialization.jsonObject(with: Data(r.body.utf8), options: [.fragmentsAllowed]) as? [String: Any]
        let value = json?["value"] ?? NSNull()
        if r.status != 200 {
            let v = value as? [String: Any]
            throw Failure(description: "WebDriver \(method) \(path): \(r.status) \(v?["error"] ?? "") \(String(describing: v?["message"] ?? "").prefix(400))")
        }
        return value
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: Any? = nil) async throws -> Any {
        try await Self.request(port: port, method, "/session/\(session)" + path, method == "POST" ? (body ?? [String: Any]()) : nil)
    }

    func open(_ url: String) async throws { try await call("POST", "/url", ["url": url]) }

    func resize(width: Int, height: Int) async throws { try await call("POST", "/window/rect", ["width": width, "height": height]) }

    /// Runs a script in the page; `arguments` may hold elements.
    @discardableResult
    func script(_ source: String, _ arguments: [Any] = []) async throws -> Any {
        try await call("POST", "/execute/sync", ["script": source, "args": arguments.map { ($0 as? Element).map { [Self.elementKey: $0.id] } ?? $0 }])
    }

    struct Element: Sendable { let id: String }

    func all(_ css: String, in parent: Element? = nil) async throws -> [Element] {
        let path = parent.map { "/element/\($0.id)/elements" } ?? "/elements"
        let found = try await call("POST", path, ["using": "css selector", "value": css]) as? [[String: Any]] ?? []
        return found.compactMap { ($0[Self.elementKey] as? String).map(Element.init) }
    }

    /// The first element matching `css`, waiting up to `timeout` seconds for it to appear (pages load their data
    /// after the shell).
    func find(_ css: String, in parent: Element? = nil, timeout: Double = 10) async throws -> Element {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let e = try await all(css, in: parent).first { return e }
            if Date() > deadline { throw Failure(description: "no element \(css) after \(timeout) s; page: \(try await pageText().prefix(600))") }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// Waits until `condition` holds, re-evaluated every 100 ms.
    func wait(_ what: String, timeout: Double = 10, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !(try await condition()) {
            if Date() > deadline {
                throw Failure(description: "\(what): not after \(timeout) s; page: \(try await pageText().prefix(1500)); console: \(await consoleLog().prefix(1500))")
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    func text(_ e: Element) async throws -> String { try await call("GET", "/element/\(e.id)/text") as? String ?? "" }
    func attribute(_ e: Element, _ name: String) async throws -> String? { try await call("GET", "/element/\(e.id)/attribute/\(name)") as? String }
    func click(_ e: Element) async throws { try await call("POST", "/element/\(e.id)/click") }
    func clear(_ e: Element) async throws { try await call("POST", "/element/\(e.id)/clear") }
    func type(_ e: Element, _ text: String) async throws { try await call("POST", "/element/\(e.id)/value", ["text": text]) }

    /// Finds `css` and acts on it, finding it again when a live refresh replaced the element between the two
    /// (a stale element reference).
    func onFresh<T>(_ css: String, timeout: Double = 10, _ act: (Element) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do { return try await act(try await find(css, timeout: timeout)) } catch let f as Failure where f.description.contains("stale element") && attempt < 4 {
                attempt += 1
                try await Task.sleep(nanoseconds: 100_000_000)
            }
        }
    }

    func click(_ css: String, timeout: Double = 10) async throws { try await onFresh(css, timeout: timeout) { try await click($0) } }

    /// The text of `css`, found afresh (a live refresh may replace elements at any time).
    func text(_ css: String, timeout: Double = 10) async throws -> String { try await onFresh(css, timeout: timeout) { try await text($0) } }

    /// Sets a field by typing into it as a user would (after clearing it).
    func fill(_ form: Element, _ name: String, _ value: String) async throws {
        let input = try await find("[name=\"\(name)\"]", in: form)
        try await clear(input)
        try await type(input, value)
    }

    /// What the page wrote to its console (errors included), for a failure's message.
    func consoleLog() async -> String {
        guard let entries = try? await call("POST", "/se/log", ["type": "browser"]) as? [[String: Any]] else { return "" }
        return entries.map { "\($0["level"] ?? ""): \($0["message"] ?? "")" }.joined(separator: "\n")
    }

    func property(_ e: Element, _ name: String) async throws -> Any { try await call("GET", "/element/\(e.id)/property/\(name)") }

    func pageText() async throws -> String { try await script("return document.body ? document.body.innerText : ''") as? String ?? "" }

    func screenshot(to path: String) async throws {
        guard let b64 = try await call("GET", "/screenshot") as? String, let data = Data(base64Encoded: b64) else {
            throw Failure(description: "no screenshot")
        }
        try data.write(to: URL(fileURLWithPath: path))
    }
}
