// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "SluicePostgres", targets: ["SluicePostgres"]),
    ],
    targets: [
        // libpq, from Debian's libpq-dev.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(name: "SluicePostgres", dependencies: ["CLibPQ"]),
    ]
)
