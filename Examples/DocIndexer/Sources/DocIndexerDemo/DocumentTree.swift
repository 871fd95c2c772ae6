import Foundation

/// The files found under a directory: every entry that is not a directory, in path order.
///
/// Regular files, symbolic links (to files, to directories, or dangling) and special files
/// are all listed, so that each one becomes a run and none is skipped silently. The worker
/// decides what it can read. Symbolic links to directories are listed, not followed.
struct DocumentTree {
    /// The paths of the files found, sorted.
    var paths: [String] = []
    /// How many of `paths` are regular files.
    var regularFileCount = 0
    /// How many of `paths` are symbolic links.
    var symbolicLinkCount = 0
    /// How many of `paths` are neither, such as FIFOs and sockets.
    var otherCount = 0
    /// The directories walked, including the root.
    var directoryCount = 0
    /// Directories that could not be listed, with the reason; their files are not in `paths`.
    var unreadableDirectories: [String] = []

    /// Walks `root` without following symbolic links.
    ///
    /// - Throws: `DemoError` when `root` is not a readable directory.
    static func walk(_ root: String) throws -> DocumentTree {
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: rootURL.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw DemoError(message: "--docs \(root) is not a directory; pass an existing directory to index")
        }

        var tree = DocumentTree(directoryCount: 1)
        let keys: [URLResourceKey] = [.isDirectoryKey, .isSymbolicLinkKey, .isRegularFileKey]
        var failures: [String] = []
        guard
            let enumerator = FileManager.default.enumerator(
                at: rootURL, includingPropertiesForKeys: keys, options: [],
                errorHandler: { url, error in
                    failures.append("\(url.path): \(error.localizedDescription)")
                    return true
                })
        else {
            throw DemoError(message: "cannot list \(rootURL.path)")
        }
        for case let url as URL in enumerator {
            let values = try? url.resourceValues(forKeys: Set(keys))
            if values?.isSymbolicLink == true {
                tree.symbolicLinkCount += 1
            } else if values?.isDirectory == true {
                tree.directoryCount += 1
                continue
            } else if values?.isRegularFile == true {
                tree.regularFileCount += 1
            } else {
                tree.otherCount += 1
            }
            tree.paths.append(url.path)
        }
        tree.paths.sort()
        tree.unreadableDirectories = failures
        return tree
    }
}
