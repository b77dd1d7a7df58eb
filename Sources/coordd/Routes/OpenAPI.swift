import Coordination
import Foundation

/// The OpenAPI 3.1 document, generated from the declarations the server itself runs on, so it cannot drift from
/// what is served: paths and roles from the route table, query parameters from each route's declared filters,
/// request bodies from each command's schema (derived from its own decoding and validation: names, JSON types,
/// required fields, enums, bounds, patterns), and for every operation each status it can answer, with its schema.
/// Checked by openapi-spec-validator and by schemathesis against a running coordd (APITests, ContractTests).
enum OpenAPI {
    static let document: String = {
        var paths: [String: [String: Any]] = [:]
        for route in App.routes {
            if case .page = route.kind { continue }
            paths[path(route), default: [:]][route.method.lowercased()] = operation(route)
        }
        let doc: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "coord API", "version": Coordination.version,
                     "description": "Emergency response coordination: surge deployments, NFI stock, cluster tasks, responses. "
                        + "The contract in words is docs/API.md. Errors are application/problem+json (RFC 9457); unknown "
                        + "JSON fields and query parameters are refused. Read-your-writes: a GET with the header "
                        + "Coord-Min-Position: N (the position an earlier write returned) answers only once the read models "
                        + "reflect the log up to N, waiting up to 2 s (else 503 with Retry-After); a malformed value is a 400."],
            "servers": [["url": "/"]],
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": [
                    "Problem": [
                        "type": "object", "required": ["type", "title", "status", "detail", "errors"],
                        "properties": [
                            "type": ["type": "string"], "title": ["type": "string"], "status": ["type": "integer"],
                            "detail": ["type": "string"],
                            "errors": ["type": "array", "items": ["type": "object", "required": ["field", "message"],
                                                                  "properties": ["field": ["type": "string"], "message": ["type": "string"]]]],
                        ],
                    ],
                    "WriteResult": [
                        "type": "object", "required": ["position", "version"],
                        "description": "The resource's state after the write, with the log position of the last event written and the stream's version.",
                        "properties": ["position": ["type": "integer", "minimum": 1], "version": ["type": "integer", "minimum": 1],
                                       "id": ["type": "string"]],
                    ],
                    "Webhook": [
                        "type": "object", "required": ["id", "url", "kinds", "enabled", "created_at", "deliveries"],
                        "properties": ["id": ["type": "string"], "url": ["type": "string"],
                                       "kinds": ["type": ["array", "null"], "items": ["type": "string"]],
                                       "description": ["type": ["string", "null"]], "enabled": ["type": "boolean"],
                                       "created_at": ["type": "string", "format": "date-time"], "created_by": ["type": "string"],
                                       "disabled_at": ["type": ["string", "null"]], "disabled_reason": ["type": ["string", "null"]],
                                       "deliveries": ["type": "object"],
                                       "secret": ["type": "string", "description": "Only in the answer to POST /v1/webhooks: whsec_ + base64"]],
                    ],
                    "Page": [
                        "type": "object", "required": ["items", "next"],
                        "properties": ["items": ["type": "array", "items": ["type": "object"]],
                                       "next": ["type": ["string", "null"], "description": "The cursor of the next page, null on the last"]],
                    ],
                    "EventPage": [
                        "type": "object", "required": ["events", "next"],
                        "properties": ["events": ["type": "array", "items": ["type": "object"]],
                                       "next": ["type": ["integer", "null"], "description": "The position to read after, null at the end"]],
                    ],
                ],
            ],
            "paths": paths,
        ]
        let data = try! JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }()

    static func path(_ route: Route) -> String {
        "/" + route.pattern.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }

    static func operation(_ route: Route) -> [String: Any] {
        let pathNames = route.segments.filter { $0.hasPrefix(":") }.map { String($0.dropFirst()) }
        var parameters: [[String: Any]] = pathNames.map {
            ["name": $0, "in": "path", "required": true, "schema": ["type": "string", "minLength": 1, "maxLength": 200]]
        }
        parameters += route.query.map { f -> [String: Any] in
            ["name": f.name, "in": "query", "required": f.required, "description": f.help, "schema": schema(f.kind)]
        }
        var operation: [String: Any] = [
            "summary": route.summary,
            "operationId": route.method.lowercased() + route.pattern.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ":", with: ""),
            "responses": responses(route),
        ]
        if let role = route.role {
            operation["security"] = [["bearer": []]]
            operation["x-required-role"] = role.rawValue
        } else {
            operation["security"] = [[String: Any]]()
        }
        if route.pattern == "/v1/events/live" {
            // The `event:` names the feed can send, for a client that must subscribe to each by name (a browser's
            // EventSource): the console reads them here rather than keep its own copy of the list.
            operation["x-event-types"] = EventCodec.eventTypes
        }
        switch route.kind {
        case .command(let command, let collection):
            let fields = CommandCatalog.schema(of: command) ?? []
            operation["x-command"] = command
            var media: [String: Any] = ["schema": body(fields, excluding: Set(pathNames))]
            if let (example, pathValues) = example(command, creates: collection != nil, pathNames: pathNames) {
                media["example"] = example
                parameters = parameters.map { p in
                    var p = p
                    if let name = p["name"] as? String, let value = pathValues[name] { p["example"] = value }
                    return p
                }
            }
            operation["requestBody"] = ["required": false, "content": ["application/json": media]]
            parameters += [
                ["name": "Idempotency-Key", "in": "header", "required": false, "schema": ["type": "string", "minLength": 1, "maxLength": 200],
                 "description": "The first answer to this key is kept and returned to every retry"],
                ["name": "If-Match", "in": "header", "required": false, "schema": ["type": "string"],
                 "description": "The resource's ETag (\"<version>\"): a stale one is 412"],
            ]
        case .resource:
            parameters.append(["name": "If-None-Match", "in": "header", "required": false, "schema": ["type": "string"],
                               "description": "ETags, weak or strong, comma-separated, or *: a match is 304"])
        case .list where route.pattern != "/v1/events" && route.pattern != "/v1/projections":
            parameters.append(["name": "If-None-Match", "in": "header", "required": false, "schema": ["type": "string"],
                               "description": "The weak ETag of an earlier JSON answer: 304 while the read models it came from are unchanged"])
        case .other where route.method == "POST" && route.pattern == "/v1/session":
            operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": [
                "type": "object", "additionalProperties": false, "required": ["token"],
                "properties": ["token": ["type": "string", "minLength": 1, "maxLength": 200]]]]]]
        case .other where route.method == "POST" && route.pattern == "/v1/webhooks":
            let properties: [String: Any] = [
                "url": ["type": "string", "format": "uri", "maxLength": 2048, "description": "http or https; not a private address"],
                "kinds": ["type": "array", "minItems": 1, "items": ["type": "string", "enum": AlertKinds.all], "description": "Only these alert kinds (default: all)"],
                "description": ["type": "string", "maxLength": 500],
            ]
            let schema: [String: Any] = ["type": "object", "additionalProperties": false, "required": ["url"], "properties": properties]
            let example: [String: Any] = ["url": "https://alerts.example.org/coord", "kinds": ["stock.below_minimum"], "description": "logistics duty phone"]
            operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": schema, "example": example]]]
        case .list, .other, .page:
            break
        }
        if !parameters.isEmpty { operation["parameters"] = parameters }
        return operation
    }

    /// An example body (and path values) for `command`, from the demo scenario: what a client of the demo would send.
    /// A creation gets an id of its own, so the example succeeds once against the demo.
    static func example(_ command: String, creates: Bool, pathNames: [String]) -> ([String: Any], [String: String])? {
        guard let line = demoLines.first(where: { $0.command == command }) else { return nil }
        var body: [String: Any] = [:]
        for (key, value) in line.body { body[key] = value }
        if creates {
            for key in ["id", "code"] where body[key] is String { body[key] = "EXAMPLE-1" }
        }
        var pathValues: [String: String] = [:]
        for name in pathNames {
            if let value = body.removeValue(forKey: name) { pathValues[name] = "\(value)" }
        }
        return (body, pathValues)
    }

    static let demoLines = DemoScenario.lines

    /// A command's body: every field it decodes, with what its validation bounds; path parameters come from the
    /// path (a body may repeat them, equal).
    static func body(_ fields: [FieldSchema], excluding pathNames: Set<String>) -> [String: Any] {
        var properties: [String: Any] = [:]
        var required: [String] = []
        for f in fields {
            properties[f.name] = field(f)
            if f.required && !pathNames.contains(f.name) { required.append(f.name) }
        }
        var out: [String: Any] = ["type": "object", "additionalProperties": false, "properties": properties]
        if !required.isEmpty { out["required"] = required }
        return out
    }

    static func field(_ f: FieldSchema) -> [String: Any] {
        var s = kind(f.kind)
        if let allowed = f.allowed { s["enum"] = allowed }
        if let minimum = f.minimum { s["minimum"] = minimum }
        if let maximum = f.maximum { s["maximum"] = maximum }
        if let minimum = f.minimumNumber { s["minimum"] = minimum }
        if let maximum = f.maximumNumber { s["maximum"] = maximum }
        if let maxLength = f.maxLength { s["maxLength"] = maxLength }
        if let pattern = f.pattern { s["pattern"] = pattern }
        if let format = f.format { s["format"] = format }
        if let help = f.help { s["description"] = help }
        if case .string = f.kind, f.allowed == nil, f.pattern == nil { s["minLength"] = 1 }
        return s
    }

    static func kind(_ k: FieldSchema.Kind) -> [String: Any] {
        switch k {
        case .string: return ["type": "string"]
        case .integer: return ["type": "integer"]
        case .number: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .date: return ["type": "string", "format": "date"]
        case .time: return ["type": "string", "format": "date-time"]
        case .array(let element): return ["type": "array", "items": kind(element)]
        case .object(let fields): return body(fields, excluding: [])
        }
    }

    static func schema(_ kind: ListFilter.Kind) -> [String: Any] {
        switch kind {
        case .text: return ["type": "string", "minLength": 1, "maxLength": 200]
        case .id: return ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"]
        case .date: return ["type": "string", "format": "date"]
        case .integer(let r): return ["type": "integer", "minimum": r.lowerBound, "maximum": r.upperBound]
        case .oneOf(let values): return ["type": "string", "enum": values]
        case .flag: return ["type": "boolean"]
        }
    }

    /// Every status the route can answer. The wire layer's own refusals (408, 431, 505) are in docs/HTTP.md:
    /// they precede routing.
    static func responses(_ route: Route) -> [String: Any] {
        func problem(_ description: String) -> [String: Any] {
            ["description": description, "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]
        }
        func json(_ description: String, _ schema: [String: Any] = ["type": "object"]) -> [String: Any] {
            ["description": description, "content": ["application/json": ["schema": schema]]]
        }
        var r: [String: Any] = [
            "400": problem("Malformed request or query, or an unknown query parameter"),
            "503": problem("Database unavailable, read models still building, or contention: retry after Retry-After"),
        ]
        if route.role != nil {
            r["401"] = problem("No token, or one coord does not know")
            r["403"] = problem("Role too low")
        }
        let writeResult: [String: Any] = ["$ref": "#/components/schemas/WriteResult"]
        switch route.kind {
        case .command(_, let collection):
            if collection != nil { r["201"] = json("Created (a retry under the same Idempotency-Key answers the same)", writeResult) }
            r["200"] = json("Done", writeResult)
            r["404"] = problem("A resource the command names does not exist")
            r["409"] = problem("A domain rule refused it (insufficient stock, an overlap, an invalid transition, already exists)")
            r["412"] = problem("Stale or weak If-Match")
            r["413"] = problem("Body over 1 MiB")
            r["415"] = problem("Not application/json")
            r["422"] = problem("Invalid fields, each named; or an Idempotency-Key reused with another body")
        case .list(let spec):
            var ok = json(spec.summary, ["$ref": "#/components/schemas/\(route.pattern == "/v1/events" ? "EventPage" : "Page")"])
            var content = ok["content"] as! [String: Any]
            content["text/csv"] = ["schema": ["type": "string"]]
            ok["content"] = content
            r["200"] = ok
            if route.pattern != "/v1/events" && route.pattern != "/v1/projections" {
                r["304"] = ["description": "Not modified: the JSON answer the If-None-Match tag names is still current"]
            }
            r["422"] = problem("A filter value the list cannot use, named")
        case .resource:
            r["200"] = json("The resource, with its ETag")
            r["304"] = ["description": "Not modified (If-None-Match matched)"]
            r["404"] = problem("Unknown resource")
        case .page:
            r["200"] = ["description": "A console page or asset"]
        case .other:
            switch (route.method, route.pattern) {
            case ("POST", "/v1/session"):
                r["200"] = json("Signed in: the session cookie is set (HttpOnly, SameSite=Strict); send csrf as X-CSRF-Token on writes",
                                ["type": "object", "required": ["role", "subject", "csrf", "expires_at"],
                                 "properties": ["role": ["type": "string", "enum": ["viewer", "operator", "admin"]], "subject": ["type": "string"],
                                                "csrf": ["type": "string"], "expires_at": ["type": "string", "format": "date-time"]]])
                r["401"] = problem("The token is unknown or revoked")
                r["415"] = problem("Not application/json")
                r["422"] = problem("No token in the body")
            case ("GET", "/v1/session"):
                r["200"] = json("The session of the cookie", ["type": "object", "required": ["role", "subject", "csrf", "expires_at"]])
                r["401"] = problem("No live session")
            case ("DELETE", "/v1/session"):
                r["204"] = ["description": "Signed out: the session ended and its cookie is cleared"]
            case ("GET", "/metrics"):
                r["200"] = ["description": "Prometheus text format", "content": ["text/plain": ["schema": ["type": "string"]]]]
                r["403"] = problem("From another host without an admin token")
                r["401"] = problem("From another host with an unknown token")
            case ("GET", "/v1/events/live"):
                r["200"] = ["description": "Server-Sent Events", "content": ["text/event-stream": ["schema": ["type": "string"]]]]
                r["422"] = problem("A resume position that is not one")
            case ("POST", "/v1/projections/:name/rebuild"):
                r["202"] = json("Rebuild requested of the projection's leader")
                r["404"] = problem("Unknown projection")
            case ("POST", "/v1/webhooks"):
                r["201"] = json("Subscribed: the answer has the signing secret (whsec_...), shown only this once", ["$ref": "#/components/schemas/Webhook"])
                r["415"] = problem("Not application/json")
                r["422"] = problem("Invalid fields, each named: an unknown kind, a URL that is not http(s) or reaches a private address")
            case ("GET", "/v1/webhooks"):
                r["200"] = json("Subscriptions (never their secrets)", ["type": "object", "required": ["items"],
                                                                         "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/Webhook"]]]])
            case ("GET", "/v1/webhooks/:id"):
                r["200"] = json("The subscription", ["$ref": "#/components/schemas/Webhook"])
                r["404"] = problem("Unknown webhook")
            case ("DELETE", "/v1/webhooks/:id"):
                r["204"] = ["description": "Deleted, with its deliveries"]
                r["404"] = problem("Unknown webhook")
            case ("GET", "/v1/webhooks/:id/deliveries"):
                r["200"] = json("Deliveries, newest first, each with its attempts", ["type": "object", "required": ["items"]])
                r["404"] = problem("Unknown webhook")
                r["422"] = problem("A parameter value that cannot be used, named")
            case ("POST", "/v1/webhooks/:id/test"):
                r["202"] = json("A ping delivery is queued", ["type": "object", "required": ["delivery"]])
                r["404"] = problem("Unknown webhook")
            case ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/openapi.json"):
                r["200"] = json("OK")
            default:
                // Replay and streams: JSON by default; CSV, HXL or Markdown where `format` asks.
                r["200"] = ["description": "OK", "content": ["application/json": ["schema": ["type": "object"]],
                                                             "text/csv": ["schema": ["type": "string"]],
                                                             "text/markdown": ["schema": ["type": "string"]]]]
                r["404"] = problem("Unknown response or stream")
                r["422"] = problem("A parameter value that cannot be used, named")
            }
        }
        return r
    }
}
