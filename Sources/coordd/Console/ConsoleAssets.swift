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
    ]

    static let byName: [String: ConsoleAsset] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
