using Treechunk.IO;

namespace Treechunk.Oci;

/// <summary>
/// The OCI image layout on disk: <c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/HEX</c>;
/// tags are the index entries' <c>org.opencontainers.image.ref.name</c> annotations.
/// </summary>
public static class OciLayout
{
    public const string LayoutFile = "oci-layout";
    public const string IndexFile = "index.json";
    public const string LayoutVersion = "1.0.0";
    public static readonly byte[] LayoutFileContent = "{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray();

    public static bool LooksLikeLayout(string dir) => File.Exists(Path.Join(dir, LayoutFile));

    public static string BlobPath(string root, string digest) => Path.Join(root, "blobs", "sha256", Digest.Hex(digest));

    /// <summary>The archive/layout member name of a blob.</summary>
    public static string BlobMember(string digest) => "blobs/sha256/" + Digest.Hex(digest);

    internal static void CheckLayoutFile(byte[] content, string where)
    {
        var info = OciJson.Deserialize<System.Text.Json.Nodes.JsonObject>(content, where);
        if (info["imageLayoutVersion"] is not System.Text.Json.Nodes.JsonValue v || !v.TryGetValue<string>(out var version) || version != LayoutVersion)
            throw new TreechunkException($"{where}: unsupported imageLayoutVersion (expected {LayoutVersion})");
    }

    /// <summary>Resolves a reference against an index.json: by digest (listed, or any manifest blob the layout holds), by tag, or the default.</summary>
    internal static Descriptor Resolve(ImageIndex index, string? tag, string? digest, string name, Func<Descriptor, byte[]?> readIfPresent)
    {
        if (digest == null) return ImageSources.PickTagged(index.Manifests, tag, name);
        Digest.Hex(digest);
        if (index.Manifests.FirstOrDefault(m => m.Digest == digest) is { } listed) return listed;
        var probe = new Descriptor { Digest = digest, Size = ImageSources.MaxMetadataSize };
        var raw = readIfPresent(probe) ?? throw new TreechunkException($"{name}: no manifest with digest {digest}");
        if (Digest.Sha256(raw) != digest) throw new TreechunkException($"{name}: blob {digest} is corrupt (its content has another digest)", ExitCodes.VerificationFailed);
        return ImageSources.DescribeManifest(raw, digest, name);
    }

    /// <summary>One tag change of an index: what <see cref="IImageDestination.Tag"/> records until the commit.</summary>
    internal sealed record TagChange(Descriptor Descriptor, string? Tag);

    /// <summary>
    /// Applies tag changes: a tag moves to its new descriptor (the entry that had it goes); an
    /// untagged entry replaces an untagged entry of the same digest. The entry keeps the
    /// descriptor's own annotations, platform and artifact type, with ref.name set to the tag.
    /// </summary>
    internal static void ApplyTags(ImageIndex index, IEnumerable<TagChange> changes)
    {
        foreach (var (d, tag) in changes)
        {
            var entry = new Descriptor
            {
                MediaType = d.MediaType, Digest = d.Digest, Size = d.Size, Platform = d.Platform, ArtifactType = d.ArtifactType,
                Annotations = d.Annotations is { } a ? new SortedDictionary<string, string>(a, StringComparer.Ordinal) : null,
            };
            entry.Annotations?.Remove(Annotations.RefName);
            if (tag != null)
            {
                entry.Annotations ??= new SortedDictionary<string, string>(StringComparer.Ordinal);
                entry.Annotations[Annotations.RefName] = tag;
                index.Manifests.RemoveAll(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == tag);
            }
            else
            {
                if (entry.Annotations is { Count: 0 }) entry.Annotations = null;
                index.Manifests.RemoveAll(m => m.Digest == d.Digest && m.Annotations?.ContainsKey(Annotations.RefName) != true);
            }
            index.Manifests.Add(entry);
        }
    }
}

/// <summary>An OCI layout directory read as an image source.</summary>
public sealed class OciLayoutSource : IImageSource
{
    public string Root { get; }
    public ImageIndex Index { get; }
    public string Name => "oci:" + Root;

    private OciLayoutSource(string root, ImageIndex index)
    {
        Root = root;
        Index = index;
    }

    public static OciLayoutSource Open(string dir)
    {
        if (File.Exists(dir)) throw new TreechunkException($"{dir} is a file, not an OCI layout directory (use oci-archive:{dir})");
        if (!Directory.Exists(dir)) throw new TreechunkException($"{dir}: no such OCI layout directory");
        var marker = Path.Join(dir, OciLayout.LayoutFile);
        if (!File.Exists(marker)) throw new TreechunkException($"{dir} is not an OCI image layout (no oci-layout file)");
        OciLayout.CheckLayoutFile(File.ReadAllBytes(marker), marker);
        var indexPath = Path.Join(dir, OciLayout.IndexFile);
        if (!File.Exists(indexPath)) throw new TreechunkException($"{dir} is not a complete OCI image layout (no index.json)");
        return new OciLayoutSource(dir, OciJson.Deserialize<ImageIndex>(File.ReadAllBytes(indexPath), indexPath));
    }

    public Descriptor Resolve(string? tag, string? digest) =>
        OciLayout.Resolve(Index, tag, digest, Root, d => File.Exists(OciLayout.BlobPath(Root, d.Digest)) && new FileInfo(OciLayout.BlobPath(Root, d.Digest)).Length <= ImageSources.MaxMetadataSize
            ? File.ReadAllBytes(OciLayout.BlobPath(Root, d.Digest)) : null);

    public byte[] ReadManifest(Descriptor d) =>
        VerifyingStream.ReadAll(OpenBlob(d), d, MediaTypes.IsIndex(d.MediaType) ? "index" : "manifest", ImageSources.MaxMetadataSize);

    public Stream OpenBlob(Descriptor d) => ImageSources.OpenBlobFile(OciLayout.BlobPath(Root, d.Digest),
        () => new TreechunkException($"blob {d.Digest} is missing from {Root}", ExitCodes.VerificationFailed));

    public Stream OpenBlobRange(Descriptor d, long offset, long length) => ImageSources.Range(OpenBlob(d), offset, length);

    public void Dispose() { }
}

/// <summary>
/// Writes into an OCI layout directory. Blobs arrive under temp names and are renamed to their
/// digests; index.json is replaced last by rename, so an interrupted write never leaves a layout
/// that names blobs it does not have. Other images in the layout are kept.
/// </summary>
public sealed class OciLayoutDestination : IImageDestination
{
    private readonly List<OciLayout.TagChange> _tags = [];
    public string Root { get; }
    public string BlobsDir => Path.Join(Root, "blobs", "sha256");
    public string Name => "oci:" + Root;

    private OciLayoutDestination(string root) => Root = root;

    /// <summary>
    /// Opens an existing layout, or creates one in an absent or empty directory. Anything else at
    /// the path is refused unless <paramref name="force"/>, which replaces it.
    /// </summary>
    public static OciLayoutDestination OpenOrCreate(string dir, bool force)
    {
        if (File.Exists(dir))
        {
            if (!force) throw new TreechunkException($"output {dir} exists and is a file, not an OCI layout (use --force to replace it)");
            File.Delete(dir);
        }
        else if (Directory.Exists(dir) && !OciLayout.LooksLikeLayout(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
        {
            if (!force) throw new TreechunkException($"output {dir} exists and is not an OCI layout (use --force to replace it)");
            Directory.Delete(dir, recursive: true);
        }
        else if (OciLayout.LooksLikeLayout(dir) && File.Exists(Path.Join(dir, OciLayout.IndexFile)))
        {
            OciLayoutSource.Open(dir); // refuse to add to a layout we cannot read
        }
        Directory.CreateDirectory(Path.Join(dir, "blobs", "sha256"));
        var marker = Path.Join(dir, OciLayout.LayoutFile);
        if (!File.Exists(marker)) AtomicFile.Write(marker, OciLayout.LayoutFileContent);
        return new OciLayoutDestination(dir);
    }

    public string BlobPath(string digest) => OciLayout.BlobPath(Root, digest);

    public bool HasBlob(Descriptor d) => new FileInfo(BlobPath(d.Digest)) is { Exists: true } f && f.Length == d.Size;

    public void PutBlob(Descriptor d, BlobContent content)
    {
        if (content.LocalPath is { } path)
        {
            if (!HasBlob(d)) AtomicFile.PlaceCopy(path, BlobPath(d.Digest));
            return;
        }
        using var verifying = new VerifyingStream(content.Open(), d, "blob");
        using var file = AtomicFile.CreateIn(BlobsDir, "blob");
        verifying.CopyTo(file.Stream, 1 << 17);
        file.CommitContentAddressed(BlobPath(d.Digest));
    }

    public IBlobWriter CreateBlob() => new BlobWriter(this, AtomicFile.CreateIn(BlobsDir, "layer"));

    public void PutManifest(Descriptor d, ReadOnlySpan<byte> raw)
    {
        if (Digest.Sha256(raw) != d.Digest || raw.Length != d.Size)
            throw new InvalidOperationException($"manifest bytes do not match descriptor {d.Digest}");
        if (HasBlob(d)) return;
        using var file = AtomicFile.CreateIn(BlobsDir, "manifest");
        file.Stream.Write(raw);
        file.CommitContentAddressed(BlobPath(d.Digest));
    }

    /// <summary>Writes a small blob whose digest is computed here (a config, a manifest).</summary>
    public Descriptor WriteBlob(byte[] data, string mediaType)
    {
        var d = new Descriptor { MediaType = mediaType, Digest = Digest.Sha256(data), Size = data.Length };
        PutManifest(d, data);
        return d;
    }

    public void Tag(Descriptor d, string? tag) => _tags.Add(new OciLayout.TagChange(d, tag));

    public void Commit()
    {
        if (_tags.Count == 0) return;
        var indexPath = Path.Join(Root, OciLayout.IndexFile);
        var index = File.Exists(indexPath) ? OciJson.Deserialize<ImageIndex>(File.ReadAllBytes(indexPath), indexPath) : new ImageIndex();
        OciLayout.ApplyTags(index, _tags);
        AtomicFile.Write(indexPath, OciJson.Serialize(index));
        _tags.Clear();
    }

    public void Dispose() { }

    private sealed class BlobWriter(OciLayoutDestination layout, AtomicFile file) : IBlobWriter
    {
        public Stream Stream => file.Stream;
        public void Commit(string digest) => file.CommitContentAddressed(layout.BlobPath(digest));
        public void Dispose() => file.Dispose();
    }
}
