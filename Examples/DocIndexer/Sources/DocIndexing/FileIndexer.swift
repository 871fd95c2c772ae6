#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The input of the `index-file` task: the file to index.
public struct IndexFileInput: Codable, Sendable, Hashable {
    /// The path of the file, absolute or relative to the worker's current directory.
    public var path: String

    public init(path: String) {
        self.path = path
    }
}

/// The output of the `index-file` task: the file's size, line and word counts and SHA-256.
public struct FileIndex: Codable, Sendable, Hashable {
    /// The path that was indexed, as given in the input.
    public var path: String
    /// The file size in bytes.
    public var bytes: Int64
    /// The number of newline characters (LF), as `wc -l` counts them.
    public var lines: Int64
    /// The number of maximal runs of bytes other than ASCII whitespace, as `wc -w` counts them
    /// in the C locale.
    public var words: Int64
    /// The SHA-256 digest of the contents as 64 lowercase hexadecimal digits.
    public var sha256: String
}

/// A file that cannot be indexed, with the path and the reason. Retrying does not help, so
/// the worker fails the run at once.
public struct FileIndexError: Error, Sendable, CustomStringConvertible {
    /// The path from the input.
    public var path: String
    /// The reason the file cannot be read, such as "is a directory" or "No such file or directory".
    public var reason: String

    public var description: String {
        "cannot index \(path): \(reason)"
    }
}

/// Reads a file in fixed-size chunks and computes its `FileIndex`.
public enum FileIndexer {
    /// The chunk size of each `read(2)`: 64 KiB, so memory stays constant for any file size.
    public static let chunkSize = 64 * 1024

    /// Reads the file at `path` once and returns its size, line and word counts and SHA-256.
    ///
    /// The file is opened with `O_NONBLOCK`, so a FIFO in the tree does not block the worker.
    /// Anything that is not a regular file after following symbolic links is rejected.
    ///
    /// - Throws: `FileIndexError` naming the path when the file does not exist (including a
    ///   dangling symbolic link), cannot be opened or read (such as permission denied), is a
    ///   directory, or is not a regular file; `CancellationError` when the calling task is
    ///   cancelled between chunks.
    public static func index(path: String) throws -> FileIndex {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw FileIndexError(path: path, reason: describeOpenFailure(path: path, errorNumber: errno))
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw FileIndexError(path: path, reason: "fstat failed: \(errorText(errno))")
        }
        let fileType = status.st_mode & S_IFMT
        guard fileType != S_IFDIR else {
            throw FileIndexError(path: path, reason: "is a directory")
        }
        guard fileType == S_IFREG else {
            throw FileIndexError(path: path, reason: "is not a regular file (\(describeFileType(fileType)))")
        }

        var counter = TextCounter()
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            try Task.checkCancellation()
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, chunkSize) }
            if count < 0 {
                if errno == EINTR {
                    continue
                }
                throw FileIndexError(path: path, reason: "read failed: \(errorText(errno))")
            }
            if count == 0 {
                break
            }
            buffer.withUnsafeBufferPointer { whole in
                let chunk = UnsafeBufferPointer(rebasing: whole[0..<count])
                hasher.update(chunk)
                counter.count(chunk)
            }
        }
        return FileIndex(
            path: path, bytes: counter.bytes, lines: counter.lines, words: counter.words,
            sha256: hasher.finalize().hexString)
    }

    /// Explains a failed `open(2)`, telling a dangling symbolic link from a missing file.
    private static func describeOpenFailure(path: String, errorNumber: Int32) -> String {
        var linkStatus = stat()
        if errorNumber == ENOENT, lstat(path, &linkStatus) == 0, linkStatus.st_mode & S_IFMT == S_IFLNK {
            return "dangling symbolic link (its target does not exist)"
        }
        return errorText(errorNumber)
    }

    private static func describeFileType(_ fileType: mode_t) -> String {
        switch fileType {
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "file type \(String(fileType, radix: 8))"
        }
    }

    private static func errorText(_ errorNumber: Int32) -> String {
        String(cString: strerror(errorNumber))
    }
}

/// Counts bytes, newlines and words across chunks, carrying whether the previous chunk ended
/// inside a word.
struct TextCounter {
    private(set) var bytes: Int64 = 0
    private(set) var lines: Int64 = 0
    private(set) var words: Int64 = 0
    private var isInWord = false

    mutating func count(_ chunk: UnsafeBufferPointer<UInt8>) {
        bytes += Int64(chunk.count)
        for byte in chunk {
            // ASCII whitespace as C's isspace() in the C locale: space, \t, \n, \v, \f, \r.
            let isWhitespace = byte == 0x20 || (byte >= 0x09 && byte <= 0x0d)
            if byte == 0x0a {
                lines += 1
            }
            if isWhitespace {
                isInWord = false
            } else if !isInWord {
                isInWord = true
                words += 1
            }
        }
    }
}
