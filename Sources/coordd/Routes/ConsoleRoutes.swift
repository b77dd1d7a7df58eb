import Coordination
import Events
import Foundation

/// Browser sessions (`/v1/session`) and the console: its pages (one shell, which loads its data from the API) and
/// its assets, embedded in the binary (Sources/coordd/Console/assets), so `make run`, the Docker image and a
/// systemd install all serve the same console with nothing to copy beside coordd.
extension App {
    static let sessionRoutes: [Route] = [
        Route("POST", "/v1/session", role: nil, "Sign in: exchange a token for a session cookie and its CSRF value") { app, ctx in
            let request = ctx.request
            guard request.header("content-type")?.lowercased().hasPrefix("application/json") == true else {
                throw Problem(status: 415, detail: "the body must be application/json")
            }
            guard let value = try? JSONValue.parse(Data(request.body)), let keys = value.keys else {
                throw Problem(status: 400, detail: "the body is not a JSON object")
            }
            let unknown = keys.filter { $0 != "token" }
            guard unknown.isEmpty else { throw Problem(status: 422, detail: "the request has invalid fields", errors: unknown.map { FieldError($0, "unknown field") }) }
            guard case .string(let token)? = value["token"], !token.isEmpty else {
                throw Problem(status: 422, detail: "the request has invalid fields", errors: [FieldError("token", "is required")])
            }
            guard let (cookie, session) = try await app.sessions.open(token: token) else {
                throw Problem(status: 401, detail: "the token is invalid or revoked")
            }
            var response = sessionAnswer(session)
            response.headers.append(("Set-Cookie", sessionCookie(cookie, maxAge: Int(app.sessions.lifetime), request: request)))
            response.headers.append(("Cache-Control", "no-store"))
            return response
        },
        Route("GET", "/v1/session", role: nil, "The session of the cookie: role, subject, CSRF value") { app, ctx in
            guard let cookie = cookie(ctx.request, named: sessionCookie), let session = try await app.sessions.session(cookie: cookie) else {
                throw Problem(status: 401, detail: "no session; sign in")
            }
            var response = sessionAnswer(session)
            response.headers.append(("Cache-Control", "no-store"))
            return response
        },
        Route("DELETE", "/v1/session", role: nil, "Sign out: end the session and clear its cookie") { app, ctx in
            if let cookie = cookie(ctx.request, named: sessionCookie) { try await app.sessions.close(cookie: cookie) }
            var response = HTTPResponse(status: 204)
            response.headers.append(("Set-Cookie", sessionCookie("", maxAge: 0, request: ctx.request)))
            return response
        },
    ]

    static func sessionAnswer(_ session: SessionStore.Session) -> HTTPResponse {
        .json(200, "{\"role\":\(JSONWriter.quote(session.principal.role.rawValue)),\"subject\":\(JSONWriter.quote(session.principal.subject)),"
              + "\"csrf\":\(JSONWriter.quote(session.csrf)),\"expires_at\":\(JSONWriter.quote(Timestamp.format(session.expiresAt)))}")
    }

    /// HttpOnly (scripts never see it), SameSite=Strict (no other site's page sends it), Secure behind TLS (the
    /// proxy's `X-Forwarded-Proto: https`, or `COORD_COOKIE_SECURE=1`).
    static func sessionCookie(_ value: String, maxAge: Int, request: HTTPRequest) -> String {
        var cookie = "\(App.sessionCookie)=\(value); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(maxAge)"
        if request.header("x-forwarded-proto")?.lowercased() == "https" || ProcessInfo.processInfo.environment["COORD_COOKIE_SECURE"] == "1" {
            cookie += "; Secure"
        }
        return cookie
    }

    /// What every console answer says to the browser: only this origin, no framing, no sniffing.
    static let consoleHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    ]

    static let pageQuery = [ListFilter("response", .id, "The response shown")]

    static let consoleRoutes: [Route] = [
        Route("GET", "/", role: nil, "The console", kind: .page) { _, _ in
            HTTPResponse(status: 302, headers: [("Location", "/console/"), ("Content-Length", "0")])
        },
        Route("GET", "/console/", role: nil, "The console: sign-in, or the overview", kind: .page, query: pageQuery) { _, _ in consolePage() },
        Route("GET", "/console/:page", role: nil, "A console page", kind: .page, query: pageQuery) { _, ctx in
            guard ConsoleAssets.pages.contains(ctx.params["page"] ?? "") else { throw Problem(status: 404, detail: "no such page") }
            return consolePage()
        },
        Route("GET", "/console/assets/:file", role: nil, "A console asset", kind: .page) { _, ctx in
            guard let asset = ConsoleAssets.byName[ctx.params["file"] ?? ""] else { throw Problem(status: 404, detail: "no such asset") }
            return asset.response(for: ctx.request)
        },
    ]

    /// The shell every page shares; the page's script reads the path and loads its data.
    static func consolePage() -> HTTPResponse {
        var r = HTTPResponse(status: 200, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache")] + consoleHeaders,
                             body: ConsoleAssets.shell)
        r.headers.append(("Vary", "Cookie"))
        return r
    }
}
