using System.Text;
using Treechunk.IO;

namespace Treechunk.Oci;

/// <summary>
/// A chunk directory: containers/image's <c>dir:</c> format, so skopeo reads and writes the same
/// thing. <c>version</c> says "Directory Transport Version: 1.1"; <c>manifest.json</c> holds the
/// top manifest (or index) as its stored bytes; every blob (config and layers: the chunks) is a
/// file named by its hex digest; the manifests an index lists are <c>HEX.manifest.json</c>.
/// There are no tags: a directory holds one image (or one index).
/// </summary>
public static class ChunkDirectory
{
    public const string VersionFile = "version";
    public const string ManifestFile = "manifest.json";
    public const string Version = "Directory Transport Version: 1.1\n";
    private const string VersionPrefix = "Directory Transport Version: 1.";

    /// <summary>A directory with a manifest.json and no oci-layout: what a bare path to a chunk directory looks like.</summary>
    public static bool LooksLikeChunkDirectory(string dir) =>
        Directory.Exists(dir) && File.Exists(Path.Join(dir, ManifestFile)) && !OciLayout.LooksLikeLayout(dir);

    public static string BlobPath(string root, string digest) => Path.Join(root, Digest.Hex(digest));

    public static string InstanceManifestPath(string root, string digest) => Path.Join(root, Digest.Hex(digest) + ".manifest.json");

    internal static void CheckVersion(string dir)
    {
        var path = Path.Join(dir, VersionFile);
        if (!File.Exists(path)) return; // skopeo before 1.1 wrote none
        var text = File.ReadAllText(path, Encoding.UTF8);
        if (!text.StartsWith(VersionPrefix, StringComparison.Ordinal))
            throw new TreechunkException($"{dir}: unsupported chunk directory version '{text.Trim()}' (expected {Version.Trim()})");
    }

    /// <summary>Names of files a chunk directory may hold: blobs, instance manifests, manifest.json, version, signatures.</summary>
    internal static bool IsOwnFile(string name) =>
        name is ManifestFile or VersionFile || name.StartsWith("signature-", StringComparison.Ordinal) || IsBlobName(name) ||
        (name.Length > 64 && IsBlobName(name[..64]) && name[64..].StartsWith(".signature-", StringComparison.Ordinal)) ||
        (name.EndsWith(".manifest.json", StringComparison.Ordinal) && IsBlobName(name[..^".manifest.json".Length])) ||
        name.StartsWith(AtomicFile.TempPrefix, StringComparison.Ordinal);

    internal static bool IsBlobName(string name) => name.Length == 64 && name.All(char.IsAsciiHexDigitLower);
}

/// <summary>A chunk directory read as an image source.</summary>
public sealed class ChunkDirectorySource : IImageSource
{
    private readonly byte[] _top;
    private readonly string _topDigest;

    public string Root { get; }
    public string Name => "dir:" + Root;

    private ChunkDirectorySource(string root, byte[] top)
    {
        Root = root;
        _top = top;
        _topDigest = Digest.Sha256(top);
    }

    public static ChunkDirectorySource Open(string dir)
    {
        if (File.Exists(dir)) throw new TreechunkException($"{dir} is a file, not a chunk directory");
        if (!Directory.Exists(dir)) throw new TreechunkException($"{dir}: no such chunk directory");
        var manifest = Path.Join(dir, ChunkDirectory.ManifestFile);
        if (!File.Exists(manifest)) throw new TreechunkException($"{dir} is not a chunk directory (no manifest.json)");
        ChunkDirectory.CheckVersion(dir);
        if (new FileInfo(manifest).Length > ImageSources.MaxMetadataSize)
            throw new TreechunkException($"{manifest} is larger than {ImageSources.MaxMetadataSize >> 20} MiB: not a manifest");
        return new ChunkDirectorySource(dir, File.ReadAllBytes(manifest));
    }

    public Descriptor Resolve(string? tag, string? digest)
    {
        if (tag != null) throw new TreechunkException($"{Name}: a chunk directory has no tags (it holds one image); drop ':{tag}'");
        if (digest == null || digest == _topDigest) return ImageSources.DescribeManifest(_top, _topDigest, Name);
        Digest.Hex(digest);
        var path = ChunkDirectory.InstanceManifestPath(Root, digest);
        if (!File.Exists(path)) throw new TreechunkException($"{Name}: holds manifest {_topDigest}, not {digest}");
        var raw = File.ReadAllBytes(path);
        if (Digest.Sha256(raw) != digest) throw new TreechunkException($"{Name}: manifest {digest} is corrupt (its content has another digest)", ExitCodes.VerificationFailed);
        return ImageSources.DescribeManifest(raw, digest, Name);
    }

    public byte[] ReadManifest(Descriptor d)
    {
        var what = MediaTypes.IsIndex(d.MediaType) ? "index" : "manifest";
        if (d.Digest == _topDigest) return VerifyingStream.ReadAll(new MemoryStream(_top, writable: false), d, what, ImageSources.MaxMetadataSize);
        var path = ChunkDirectory.InstanceManifestPath(Root, d.Digest);
        if (!File.Exists(path)) throw new TreechunkException($"{Name}: {what} {d.Digest} is missing ({Path.GetFileName(path)})", ExitCodes.VerificationFailed);
        return VerifyingStream.ReadAll(File.OpenRead(path), d, what, ImageSources.MaxMetadataSize);
    }

    public Stream OpenBlob(Descriptor d) => ImageSources.OpenBlobFile(ChunkDirectory.BlobPath(Root, d.Digest),
        () => new TreechunkException($"{Name}: chunk {d.Digest} is missing", ExitCodes.VerificationFailed));

    public Stream OpenBlobRange(Descriptor d, long offset, long length) => ImageSources.Range(OpenBlob(d), offset, length);

    public void Dispose() { }
}

/// <summary>
/// Writes a chunk directory. A chunk already there with the right digest is kept (it is hashed
/// once to know); a wrong one is replaced. Blobs arrive under temp names and are renamed; the
/// index's manifests, then manifest.json, are written at the commit, manifest.json last, and
/// then files of an earlier image that the new one does not name are removed.
/// </summary>
public sealed class ChunkDirectoryDestination : IImageDestination
{
    private readonly Dictionary<string, bool> _verified = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _manifests = new(StringComparer.Ordinal);
    private readonly List<(Descriptor Descriptor, string? Tag)> _tags = [];
    private readonly HashSet<string> _written = new(StringComparer.Ordinal);

    public string Root { get; }
    public string Name => "dir:" + Root;
    /// <summary>Chunks found in the directory with the right digest, so not transferred.</summary>
    public int ChunksKept { get; private set; }
    /// <summary>Chunks found with the wrong bytes, and replaced.</summary>
    public int ChunksReplaced { get; private set; }

    /// <summary>The digest of the manifest.json already there, if any: its signatures stay when it stays.</summary>
    private readonly string? _previousTop;

    private ChunkDirectoryDestination(string root)
    {
        Root = root;
        var manifest = Path.Join(root, ChunkDirectory.ManifestFile);
        if (File.Exists(manifest)) _previousTop = Digest.Sha256(File.ReadAllBytes(manifest));
    }

    /// <summary>Opens a chunk directory to update, or creates one in an absent or empty directory; anything else needs <paramref name="force"/>.</summary>
    public static ChunkDirectoryDestination OpenOrCreate(string dir, bool force)
    {
        if (File.Exists(dir))
        {
            if (!force) throw new TreechunkException($"output {dir} exists and is a file, not a chunk directory (use --force to replace it)");
            File.Delete(dir);
        }
        else if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
        {
            bool ours = Directory.EnumerateFileSystemEntries(dir).All(p => File.Exists(p) && ChunkDirectory.IsOwnFile(Path.GetFileName(p))) &&
                        (File.Exists(Path.Join(dir, ChunkDirectory.VersionFile)) || File.Exists(Path.Join(dir, ChunkDirectory.ManifestFile)));
            if (!ours)
            {
                if (!force) throw new TreechunkException($"output {dir} exists and is not a chunk directory (use --force to replace it)");
                Directory.Delete(dir, recursive: true);
            }
            else ChunkDirectory.CheckVersion(dir);
        }
        Directory.CreateDirectory(dir);
        return new ChunkDirectoryDestination(dir);
    }

    public bool HasBlob(Descriptor d)
    {
        lock (_verified)
            if (_verified.TryGetValue(d.Digest, out var known)) return known;
        var path = ChunkDirectory.BlobPath(Root, d.Digest);
        bool good = false;
        if (new FileInfo(path) is { Exists: true } f)
        {
            if (f.Length == d.Size)
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
                good = Digest.Sha256(stream) == d.Digest;
            }
            lock (_verified)
            {
                if (good) ChunksKept++;
                else ChunksReplaced++;
            }
        }
        lock (_verified)
        {
            _verified[d.Digest] = good;
            if (good) _written.Add(d.Digest);
        }
        return good;
    }

    public void PutBlob(Descriptor d, BlobContent content)
    {
        using var verifying = new VerifyingStream(content.Open(), d, "blob");
        using var file = AtomicFile.CreateIn(Root, "chunk");
        verifying.CopyTo(file.Stream, 1 << 17);
        // Not content-addressed: a file of that name may be the corrupt chunk being replaced.
        file.Commit(ChunkDirectory.BlobPath(Root, d.Digest));
        lock (_verified)
        {
            _verified[d.Digest] = true;
            _written.Add(d.Digest);
        }
    }

    public IBlobWriter CreateBlob() => new BlobWriter(this, AtomicFile.CreateIn(Root, "chunk"));

    public void PutManifest(Descriptor d, ReadOnlySpan<byte> raw)
    {
        if (Digest.Sha256(raw) != d.Digest || raw.Length != d.Size)
            throw new InvalidOperationException($"manifest bytes do not match descriptor {d.Digest}");
        lock (_manifests) _manifests[d.Digest] = raw.ToArray();
    }

    public void Tag(Descriptor d, string? tag) => _tags.Add((d, tag));

    public void Commit()
    {
        var tops = _tags.Select(t => t.Descriptor.Digest).Distinct(StringComparer.Ordinal).ToList();
        if (tops.Count == 0) return;
        if (tops.Count > 1) throw new TreechunkException($"{Name}: a chunk directory holds one image, not {tops.Count}");
        var top = tops[0];
        if (!_manifests.TryGetValue(top, out var topBytes)) throw new InvalidOperationException($"manifest {top} was not written");
        AtomicFile.WriteText(Path.Join(Root, ChunkDirectory.VersionFile), ChunkDirectory.Version);
        foreach (var (digest, bytes) in _manifests.Where(m => m.Key != top))
            AtomicFile.Write(ChunkDirectory.InstanceManifestPath(Root, digest), bytes);
        AtomicFile.Write(Path.Join(Root, ChunkDirectory.ManifestFile), topBytes);
        // What an earlier image left and this one does not name; its signatures too, unless it is the same image.
        foreach (var path in Directory.EnumerateFiles(Root))
        {
            var name = Path.GetFileName(path);
            bool keep = name is ChunkDirectory.ManifestFile or ChunkDirectory.VersionFile ||
                        (_previousTop == top && name.Contains("signature-", StringComparison.Ordinal)) ||
                        (ChunkDirectory.IsBlobName(name) && _written.Contains("sha256:" + name)) ||
                        (name.EndsWith(".manifest.json", StringComparison.Ordinal) && _manifests.ContainsKey("sha256:" + name[..^".manifest.json".Length]) && "sha256:" + name[..^".manifest.json".Length] != top);
            if (!keep && ChunkDirectory.IsOwnFile(name) && !name.StartsWith(AtomicFile.TempPrefix, StringComparison.Ordinal)) File.Delete(path);
        }
        _tags.Clear();
    }

    public void Dispose() { }

    private sealed class BlobWriter(ChunkDirectoryDestination dir, AtomicFile file) : IBlobWriter
    {
        public Stream Stream => file.Stream;

        public void Commit(string digest)
        {
            file.Commit(ChunkDirectory.BlobPath(dir.Root, digest));
            lock (dir._verified)
            {
                dir._verified[digest] = true;
                dir._written.Add(digest);
            }
        }

        public void Dispose() => file.Dispose();
    }
}
