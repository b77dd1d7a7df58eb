import Coordination
import Foundation

/// The OpenAPI 3.1 document, generated from the router itself, so it cannot drift from what is served.
enum OpenAPI {
    static let document: String = {
        var paths: [String: [String: Any]] = [:]
        for route in App.routes {
            let path = "/" + route.pattern.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                .joined(separator: "/")
            var operation: [String: Any] = [
                "summary": route.summary,
                "operationId": route.method.lowercased() + route.pattern.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ":", with: ""),
                "responses": responses(route),
            ]
            let params = route.segments.filter { $0.hasPrefix(":") }.map { seg -> [String: Any] in
                ["name": String(seg.dropFirst()), "in": "path", "required": true, "schema": ["type": "string"]]
            }
            let parameters = params + route.query.map { f -> [String: Any] in
                ["name": f.name, "in": "query", "required": f.required, "description": f.help, "schema": schema(f.kind)]
            }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            if let role = route.role {
                operation["security"] = [["bearer": []]]
                operation["x-required-role"] = role.rawValue
            } else {
                operation["security"] = [[String: Any]]()
            }
            if case .command(let command, _) = route.kind {
                let fields = CommandCatalog.fields(of: command) ?? []
                let pathParams = Set(params.compactMap { $0["name"] as? String })
                operation["x-command"] = command
                operation["requestBody"] = ["required": false, "content": ["application/json": ["schema": [
                    "type": "object", "additionalProperties": false,
                    "properties": Dictionary(uniqueKeysWithValues: fields.filter { !pathParams.contains($0) }.map { ($0, [String: Any]()) }),
                ]]]]
                operation["parameters"] = params + [
                    ["name": "Idempotency-Key", "in": "header", "schema": ["type": "string", "maxLength": 200]],
                    ["name": "If-Match", "in": "header", "schema": ["type": "string"]],
                ]
            }
            paths[path, default: [:]][route.method.lowercased()] = operation
        }
        let doc: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "coord API", "version": Coordination.version,
                     "description": "Emergency response coordination: surge deployments, NFI stock, cluster tasks, responses. "
                        + "Errors are application/problem+json (RFC 9457). Unknown JSON fields are rejected with 422."],
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": ["Problem": ["type": "object", "properties": [
                    "type": ["type": "string"], "title": ["type": "string"], "status": ["type": "integer"], "detail": ["type": "string"],
                    "errors": ["type": "array", "items": ["type": "object", "properties": ["field": ["type": "string"], "message": ["type": "string"]]]],
                ]]],
            ],
            "paths": paths,
        ]
        let data = try! JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }()

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

    static func responses(_ route: Route) -> [String: Any] {
        let problem: [String: Any] = ["content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]
        var r: [String: Any] = ["200": ["description": "OK"]]
        if route.role != nil {
            r["401"] = ["description": "No or invalid token"].merging(problem) { a, _ in a }
            r["403"] = ["description": "Role too low"].merging(problem) { a, _ in a }
        }
        if route.pattern.contains(":") { r["404"] = ["description": "Unknown resource"].merging(problem) { a, _ in a } }
        if route.method != "GET" {
            r["201"] = ["description": "Created"]
            r["409"] = ["description": "A domain rule refused it"].merging(problem) { a, _ in a }
            r["412"] = ["description": "Stale If-Match"].merging(problem) { a, _ in a }
            r["413"] = ["description": "Body too large"].merging(problem) { a, _ in a }
            r["415"] = ["description": "Not application/json"].merging(problem) { a, _ in a }
            r["422"] = ["description": "Validation failed"].merging(problem) { a, _ in a }
        }
        r["503"] = ["description": "Database unavailable"].merging(problem) { a, _ in a }
        return r
    }
}
