// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "SluicePostgres", targets: ["SluicePostgres"]),
        .library(name: "Sluice", targets: ["Sluice"]),
        .library(name: "EmbeddedPostgres", targets: ["EmbeddedPostgres"]),
        .library(name: "SluiceCoordinator", targets: ["SluiceCoordinator"]),
        .executable(name: "sluice", targets: ["SluiceCLI"]),
        .executable(name: "sluice-bench", targets: ["SluiceBench"]),
        .executable(name: "sluice-doc-indexer-worker", targets: ["DocIndexerWorker"]),
        .executable(name: "sluice-doc-indexer-demo", targets: ["DocIndexerDemo"]),
    ],
    targets: [
        // libpq, from Debian's libpq-dev.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(name: "SluicePostgres", dependencies: ["CLibPQ"]),
        .target(name: "Sluice", dependencies: ["SluicePostgres"]),
        .executableTarget(
            name: "SluiceTestWorker", dependencies: ["Sluice", "SluicePostgres"], path: "Tests/Fixtures/SluiceTestWorker"),
        .testTarget(
            name: "SluiceTests", dependencies: ["Sluice", "SluiceTestSupport", "SluiceTestWorker"]),
        .executableTarget(
            name: "SluiceFlowWorker", dependencies: ["Sluice"], path: "Tests/Fixtures/SluiceFlowWorker"),
        .testTarget(
            name: "SluiceFlowControlTests",
            dependencies: ["Sluice", "SluicePostgres", "SluiceTestSupport", "SluiceFlowWorker"]),
        .target(name: "EmbeddedPostgres", dependencies: ["SluicePostgres"]),
        .target(name: "SluiceTestSupport", dependencies: ["SluicePostgres", "EmbeddedPostgres"]),
        .testTarget(name: "SluicePostgresTests", dependencies: ["SluicePostgres", "SluiceTestSupport"]),
        .testTarget(name: "EmbeddedPostgresTests", dependencies: ["EmbeddedPostgres", "SluiceTestSupport"]),
        .target(name: "SluiceCoordinator", dependencies: ["Sluice", "SluicePostgres"]),
        .executableTarget(
            name: "SluiceCLI", dependencies: ["Sluice", "SluicePostgres", "EmbeddedPostgres", "SluiceCoordinator"]),
        .testTarget(
            name: "SluiceCoordinatorTests", dependencies: ["SluiceCoordinator", "SluiceTestSupport"]),
        .testTarget(
            name: "SluiceScheduleTests", dependencies: ["Sluice", "SluiceCoordinator", "SluiceTestSupport"]),
        .testTarget(name: "SluiceCLITests", dependencies: ["SluiceCLI", "SluiceTestSupport"]),
        .executableTarget(
            name: "SluiceBench", dependencies: ["Sluice", "SluicePostgres", "SluiceCoordinator", "EmbeddedPostgres"],
            path: "bench/Sources/SluiceBench"),
        .testTarget(name: "SluiceBenchTests", dependencies: ["SluiceBench"], path: "bench/Tests/SluiceBenchTests"),
        .testTarget(
            name: "SluiceRestartTests", dependencies: ["Sluice", "SluiceCoordinator", "SluiceTestSupport"]),
        // The main job example: the index-file task, its worker daemon and the demo that runs the job.
        .target(name: "DocIndexing", dependencies: ["Sluice"], path: "Examples/DocIndexer/Sources/DocIndexing"),
        .executableTarget(
            name: "DocIndexerWorker", dependencies: ["DocIndexing", "Sluice"],
            path: "Examples/DocIndexer/Sources/DocIndexerWorker"),
        .executableTarget(
            name: "DocIndexerDemo",
            dependencies: ["DocIndexing", "Sluice", "SluicePostgres", "SluiceCoordinator", "EmbeddedPostgres"],
            path: "Examples/DocIndexer/Sources/DocIndexerDemo"),
        .testTarget(
            name: "DocIndexingTests", dependencies: ["DocIndexing"], path: "Examples/DocIndexer/Tests/DocIndexingTests"),
    ]
)
