import Foundation
import Testing
@testable import coordd

@Suite("HTTP request decoder")
struct DecoderTests {
    func decode(_ text: String, limits: HTTPLimits = HTTPLimits()) throws(HTTPDecodeError) -> [HTTPRequest] {
        var d = RequestDecoder(limits: limits)
        d.feed(Array(text.utf8))
        var out: [HTTPRequest] = []
        while let r = try d.next() { out.append(r) }
        return out
    }

    func status(_ text: String, limits: HTTPLimits = HTTPLimits()) -> Int? {
        do { _ = try decode(text, limits: limits); return nil } catch { return error.status }
    }

    @Test("a request with a body, split at every byte, decodes the same")
    func splitReads() throws {
        let text = "POST /v1/items?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}"
        for split in 1..<text.utf8.count {
            var d = RequestDecoder(limits: HTTPLimits())
            let bytes = Array(text.utf8)
            d.feed(bytes[0..<split])
            var got = try d.next()
            if got == nil { d.feed(bytes[split...]); got = try d.next() }
            let r = try #require(got, "split \(split)")
            #expect(r.method == "POST")
            #expect(r.path == "/v1/items")
            #expect(try r.queryParameters() == ["x": "1"])
            #expect(String(decoding: r.body, as: UTF8.self) == "{\"a\":\"b c\"}")
        }
    }

    @Test("pipelined requests come out in order; chunked bodies are reassembled")
    func pipeliningAndChunked() throws {
        let text = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n"
            + "HEAD /c HTTP/1.0\r\n\r\n"
        let rs = try decode(text)
        #expect(rs.map(\.path) == ["/a", "/b", "/c"])
        #expect(String(decoding: rs[1].body, as: UTF8.self) == "Wikipedia")
        #expect(!rs[2].keepAlive)
        #expect(rs[0].keepAlive)
    }

    @Test("every limit and malformed form gets its status")
    func limitsAndMalformed() {
        let small = HTTPLimits(maxHeaderBytes: 256, maxHeaderCount: 5, maxBodyBytes: 10)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nX: \(String(repeating: "a", count: 300))\r\n\r\n", limits: small) == 431)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\n" + String(repeating: "X-A: 1\r\n", count: 6) + "\r\n", limits: small) == 431)
        #expect(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: small) == 413)
        #expect(status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n", limits: small) == 413)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n") == 501)
        #expect(status("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505)
        #expect(status("GET / HTTP/1.1\r\n\r\n") == 400, "missing Host")
        #expect(status("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n") == 400)
        #expect(status("get / HTTP/1.1\r\nHost: h\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost : h\r\n\r\n") == 400)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nNo-Colon\r\n\r\n") == 400)
        #expect(status("GET noslash HTTP/1.1\r\nHost: h\r\n\r\n") == 400)
        #expect(status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == 400)
        #expect(status("\u{1}\u{2}garbage\r\n\r\n") == 400)
    }

    @Test("header names are lower-cased and values trimmed; folding, control bytes and bad bytes are refused")
    func headerForms() throws {
        let r = try #require(try decode("GET /p?q=%C3%A9 HTTP/1.1\r\nHOST:  h \t\r\nX-Token-Id:\ta\tb \r\nEmpty:\r\n\r\n").first)
        #expect(r.headers.map(\.name) == ["host", "x-token-id", "empty"])
        #expect(r.headers.map(\.value) == ["h", "a\tb", ""])
        #expect(try r.queryParameters() == ["q": "é"])
        #expect(r.version == "HTTP/1.1" && r.method == "GET")
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n") == 400, "obsolete line folding")
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{7}b\r\n\r\n") == 400, "control byte in a value")
        #expect(status("GET / HTTP/1.1\r\nHost: h\nX: a\r\n\r\n") == 400, "bare LF inside a value")
        #expect(status("GET / HTTP/1.1\nHost: h\r\n\r\n") == 400, "bare LF after the request line")
        #expect(status("GET /a\u{A0}b HTTP/1.1\r\nHost: h\r\n\r\n") == 400, "Unicode whitespace in the target")
        #expect(status("GET /é HTTP/1.1\r\nHost: h\r\n\r\n") == nil, "other UTF-8 in the target is kept")
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nX\u{E9}: 1\r\n\r\n") == 400, "non-token header name")
        #expect(status("GET / HTTP/1.0\r\n\r\n") == nil, "HTTP/1.0 needs no Host")
        #expect(status("GET / HTTP/1.1 \r\nHost: h\r\n\r\n") == 400, "trailing space in the request line")
        var d = RequestDecoder(limits: HTTPLimits())
        d.feed([0x47, 0x45, 0x54, 0x20, 0x2f, 0xff] + Array(" HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPDecodeError.self) { try d.next() }
    }

    @Test("percent-decoding agrees with Foundation's removingPercentEncoding, and refuses escapes that are not UTF-8")
    func percentDecoding() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("%%%+aF09zé/ ".unicodeScalars) + ["%C3", "%A9", "%ff", "%2", "%4g", "%E6%9D%B1", "%00"].flatMap { Array($0.unicodeScalars) }
        for _ in 0..<5_000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...12, using: &rng) { s.append(alphabet.randomElement(using: &rng)!) }
            let text = String(s)
            // Where the escapes decode to bytes that are not UTF-8, Foundation on Linux substitutes U+FFFD;
            // refusing is the stricter answer (an unmatched path, a skipped query pair).
            func expected(_ f: String?) -> String? { f?.contains("\u{FFFD}") == true ? nil : f }
            #expect(PercentEncoding.decode(text) == expected(text.removingPercentEncoding), "\(text)")
            #expect(HTTPRequest.percentDecode(text) == expected(text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding), "\(text)")
        }
        #expect(PercentEncoding.decode("a%2Fb") == "a/b" && PercentEncoding.decode("%E6%9D%B1") == "東")
        #expect(PercentEncoding.decode("%") == nil && PercentEncoding.decode("%C3") == nil && PercentEncoding.decode("%zz") == nil)
    }

    @Test("Expect: 100-continue is signalled until the body arrives")
    func expectContinue() throws {
        var d = RequestDecoder(limits: HTTPLimits())
        d.feed(Array("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8))
        #expect(try d.next() == nil)
        #expect(d.wantsContinue)
        d.markContinueSent()
        d.feed(Array("{}".utf8))
        #expect(try d.next()?.body == Array("{}".utf8))
    }
}
