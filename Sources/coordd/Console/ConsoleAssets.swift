import Coordination
import Events
import Foundation

/// The console's files, embedded at build time from `assets/` (Package.swift: `.embedInCode`), each with a strong
/// ETag from its content and a gzipped copy made once. A test checks every file of the folder is listed here.
struct ConsoleAsset: Sendable {
    let name: String
    let contentType: String
    let bytes: [UInt8]
    let etag: String
    let gzipped: [UInt8]

    init(_ name: String, _ contentType: String, _ bytes: [UInt8]) {
        self.name = name
        self.contentType = contentType
        self.bytes = bytes
        self.etag = "\"" + String(bytes.withUnsafeBufferPointer { Hex.string(SHA256.hash($0)) }.prefix(16)) + "\""
        self.gzipped = Gzip.compress(bytes)
    }

    /// 200 with the asset (gzipped when accepted, under its own ETag), or 304 when the browser has it.
    func response(for request: HTTPRequest) -> HTTPResponse {
        let zip = Gzip.accepted(by: request.header("accept-encoding"))
        let tag = zip ? String(etag.dropLast()) + "-gz\"" : etag
        var headers: [(String, String)] = [("ETag", tag), ("Cache-Control", "no-cache"), ("Vary", "Accept-Encoding")] + App.consoleHeaders
        if let inm = request.header("if-none-match"), inm.split(separator: ",").contains(where: {
            let t = $0.trimmingCharacters(in: .whitespaces)
            return t == "*" || (t.hasPrefix("W/") ? String(t.dropFirst(2)) : t) == tag
        }) {
            return HTTPResponse(status: 304, headers: headers)
        }
        headers.insert(("Content-Type", contentType), at: 0)
        if zip { headers.append(("Content-Encoding", "gzip")) }
        return HTTPResponse(status: 200, headers: headers, body: zip ? gzipped : bytes)
    }
}

enum ConsoleAssets {
    /// The pages the shell serves (`/console/<page>`).
    static let pages: Set<String> = ["overview", "surge", "stock", "tasks", "replay", "signin"]

    static let shell = PackageResources.index_html

    static let all: [ConsoleAsset] = [
        ConsoleAsset("index.html", "text/html; charset=utf-8", PackageResources.index_html),
        ConsoleAsset("app.css", "text/css; charset=utf-8", PackageResources.app_css),
        ConsoleAsset("icon.svg", "image/svg+xml", PackageResources.icon_svg),
        ConsoleAsset("app.js", "text/javascript; charset=utf-8", PackageResources.app_js),
        ConsoleAsset("api.js", "text/javascript; charset=utf-8", PackageResources.api_js),
        ConsoleAsset("ui.js", "text/javascript; charset=utf-8", PackageResources.ui_js),
        ConsoleAsset("overview.js", "text/javascript; charset=utf-8", PackageResources.overview_js),
        ConsoleAsset("surge.js", "text/javascript; charset=utf-8", PackageResources.surge_js),
        ConsoleAsset("stock.js", "text/javascript; charset=utf-8", PackageResources.stock_js),
        ConsoleAsset("tasks.js", "text/javascript; charset=utf-8", PackageResources.tasks_js),
        ConsoleAsset("replay.js", "text/javascript; charset=utf-8", PackageResources.replay_js),
    ]

    /// `schema.json`: what the console's forms and feed need to know of the API, derived from the same declarations
    /// the server validates with (each command route's enum fields, and the live feed's event names), so no list of
    /// choices is kept twice. A few kilobytes, where the OpenAPI document is 180.
    static let schema: ConsoleAsset = {
        var commands: [String: [String: [String]]] = [:]
        for route in App.routes {
            guard case .command(let command, _) = route.kind, let fields = CommandCatalog.schema(of: command) else { continue }
            var enums: [String: [String]] = [:]
            for f in fields {
                if let allowed = f.allowed { enums[f.name] = allowed }
            }
            if !enums.isEmpty { commands[route.method + " " + OpenAPI.path(route)] = enums }
        }
        let doc: [String: Any] = ["enums": commands, "event_types": EventCodec.eventTypes]
        let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])) ?? Data("{}".utf8)
        return ConsoleAsset("schema.json", "application/json", Array(data))
    }()

    static let byName: [String: ConsoleAsset] = Dictionary(uniqueKeysWithValues: (all + [schema]).map { ($0.name, $0) })
}
