namespace Treechunk.Oci;

/// <summary>
/// An OCI image layout directory: <c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/</c>.
/// Reading checks every blob it hands out against its descriptor.
/// </summary>
public sealed class OciLayout
{
    public string Root { get; }
    public ImageIndex Index { get; }

    private OciLayout(string root, ImageIndex index)
    {
        Root = root;
        Index = index;
    }

    public static bool LooksLikeLayout(string dir) => File.Exists(Path.Join(dir, "oci-layout"));

    public static OciLayout Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new TreechunkException($"{dir}: no such OCI layout directory");
        var marker = Path.Join(dir, "oci-layout");
        if (!File.Exists(marker)) throw new TreechunkException($"{dir} is not an OCI image layout (no oci-layout file)");
        var layoutInfo = OciJson.Deserialize<System.Text.Json.Nodes.JsonObject>(File.ReadAllBytes(marker), $"{marker}");
        if (layoutInfo["imageLayoutVersion"]?.GetValue<string>() != "1.0.0")
            throw new TreechunkException($"{marker}: unsupported imageLayoutVersion (expected 1.0.0)");
        var indexPath = Path.Join(dir, "index.json");
        if (!File.Exists(indexPath)) throw new TreechunkException($"{dir} is not a complete OCI image layout (no index.json)");
        var index = OciJson.Deserialize<ImageIndex>(File.ReadAllBytes(indexPath), indexPath);
        return new OciLayout(dir, index);
    }

    public string BlobPath(string digest) => Path.Join(Root, "blobs", "sha256", Digest.Hex(digest));

    public bool HasBlob(string digest) => File.Exists(BlobPath(digest));

    /// <summary>Opens a blob for streaming; the caller verifies (see <see cref="OpenVerified"/>).</summary>
    public Stream OpenBlob(Descriptor d)
    {
        var path = BlobPath(d.Digest);
        if (!File.Exists(path)) throw new TreechunkException($"blob {d.Digest} is missing from {Root}", ExitCodes.VerificationFailed);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
    }

    /// <summary>Reads a small JSON blob whole (manifests and configs only) and checks digest and size.</summary>
    public byte[] ReadSmallBlob(Descriptor d, string what)
    {
        if (d.Size > 64 << 20) throw new TreechunkException($"{what} {d.Digest} is implausibly large ({d.Size} bytes)");
        var path = BlobPath(d.Digest);
        if (!File.Exists(path)) throw new TreechunkException($"{what} blob {d.Digest} is missing from {Root}", ExitCodes.VerificationFailed);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length != d.Size || Digest.Sha256(bytes) != d.Digest)
            throw new TreechunkException($"{what} blob {d.Digest} is corrupt (digest or size mismatch)", ExitCodes.VerificationFailed);
        return bytes;
    }

    /// <summary>
    /// Picks the image a reference means: the descriptor tagged <paramref name="tag"/>, or with no
    /// tag the one tagged "latest", or the only image. Nested indexes pick the host platform.
    /// </summary>
    public Descriptor ResolveManifest(string? tag, string? architecture = null)
    {
        var manifests = Index.Manifests;
        Descriptor? chosen;
        if (tag != null)
        {
            chosen = manifests.FirstOrDefault(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == tag)
                     ?? throw new TreechunkException($"{Root}: no image tagged '{tag}' (tags: {TagList()})");
        }
        else if (manifests.Count == 1) chosen = manifests[0];
        else
        {
            chosen = manifests.FirstOrDefault(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == "latest")
                     ?? throw new TreechunkException(manifests.Count == 0
                         ? $"{Root}: the layout holds no image"
                         : $"{Root}: holds {manifests.Count} images; name one with :TAG (tags: {TagList()})");
        }
        int depth = 0;
        while (MediaTypes.IsIndex(chosen.MediaType))
        {
            if (++depth > 4) throw new TreechunkException($"{Root}: index nesting too deep");
            var nested = OciJson.Deserialize<ImageIndex>(ReadSmallBlob(chosen, "index"), $"index {chosen.Digest}");
            var arch = architecture ?? Platforms.HostArchitecture;
            chosen = nested.Manifests.FirstOrDefault(m => m.Platform?.Architecture == arch && MediaTypes.IsManifest(m.MediaType))
                     ?? nested.Manifests.FirstOrDefault(m => MediaTypes.IsManifest(m.MediaType))
                     ?? throw new TreechunkException($"index {chosen.Digest} has no image manifest");
        }
        if (!MediaTypes.IsManifest(chosen.MediaType))
            throw new TreechunkException($"{Root}: descriptor {chosen.Digest} has unsupported media type '{chosen.MediaType}'");
        return chosen;
    }

    public string TagList()
    {
        var tags = Index.Manifests.Select(m => m.Annotations?.GetValueOrDefault(Annotations.RefName)).Where(t => t != null).ToList();
        return tags.Count == 0 ? "none" : string.Join(", ", tags);
    }

    public ImageManifest ReadManifest(Descriptor d) =>
        Validate(OciJson.Deserialize<ImageManifest>(ReadSmallBlob(d, "manifest"), $"manifest {d.Digest}"), d);

    public ImageConfig ReadConfig(ImageManifest m) =>
        OciJson.Deserialize<ImageConfig>(ReadSmallBlob(m.Config, "config"), $"config {m.Config.Digest}");

    private static ImageManifest Validate(ImageManifest m, Descriptor d)
    {
        if (m.SchemaVersion != 2) throw new TreechunkException($"manifest {d.Digest}: unsupported schemaVersion {m.SchemaVersion}");
        if (string.IsNullOrEmpty(m.Config.Digest)) throw new TreechunkException($"manifest {d.Digest} has no config");
        foreach (var l in m.Layers) Digest.Hex(l.Digest);
        return m;
    }
}

public static class Platforms
{
    /// <summary>The host architecture in OCI/Go naming.</summary>
    public static string HostArchitecture => System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64",
        System.Runtime.InteropServices.Architecture.LoongArch64 => "loong64",
        var a => a.ToString().ToLowerInvariant(),
    };

    /// <summary>Accepts Go names and the distribution names people type (x86_64, aarch64).</summary>
    public static string Normalize(string arch) => arch switch
    {
        "x86_64" or "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" or "i686" => "386",
        "armhf" or "armv7" or "armv7l" => "arm",
        "ppc64el" => "ppc64le",
        _ => arch,
    };
}
