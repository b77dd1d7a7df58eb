// swift-tools-version:6.0
import PackageDescription

// coord depends on the Swift toolchain and the system's libpq only: no package dependencies,
// so the server builds offline and every line that runs in production is auditable here.
let package = Package(
    name: "coord",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "coordd", targets: ["coordd"]),
        .executable(name: "coordctl", targets: ["coordctl"]),
        .library(name: "Events", targets: ["Events"]),
        .library(name: "Coordination", targets: ["Coordination"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .target(name: "Events", dependencies: ["CLibPQ"]),
        .target(name: "Coordination", dependencies: ["Events"]),
        // The console's HTML, CSS and JavaScript are embedded in the binary: coordd serves them with nothing beside it.
        .executableTarget(name: "coordd", dependencies: ["CLibPQ", "Events", "Coordination"], resources: [.embedInCode("Console/assets")]),
        .executableTarget(name: "coordctl", dependencies: ["Events", "Coordination"]),
        // Shared by the test targets: the throwaway PostgreSQL and per-test schemas.
        .target(name: "TestSupport", dependencies: ["Events"], path: "Tests/TestSupport"),
        .testTarget(name: "EventsTests", dependencies: ["Events", "Coordination", "TestSupport"]),
        .testTarget(name: "CoordinationTests", dependencies: ["Coordination", "Events", "TestSupport"]),
        .testTarget(name: "coorddTests", dependencies: ["coordd", "Coordination", "Events", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
