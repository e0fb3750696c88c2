using System.Text;

namespace Treechunk.Oci;

/// <summary>
/// Writes into an OCI layout directory. Blobs arrive under temp names and are renamed to their
/// digests; index.json is replaced last by rename, so an interrupted write never leaves a layout
/// that names blobs it does not have.
/// </summary>
public sealed class OciLayoutWriter
{
    public string Root { get; }
    public string BlobsDir => Path.Join(Root, "blobs", "sha256");

    private OciLayoutWriter(string root) => Root = root;

    /// <summary>
    /// Opens an existing layout (its other images are kept), or creates one in an absent or empty
    /// directory. Anything else at the path is refused unless <paramref name="force"/>, which replaces it.
    /// </summary>
    public static OciLayoutWriter OpenOrCreate(string dir, bool force)
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
        else if (OciLayout.LooksLikeLayout(dir) && File.Exists(Path.Join(dir, "index.json")))
        {
            OciLayout.Open(dir); // refuse to add to a layout we cannot read
        }
        Directory.CreateDirectory(Path.Join(dir, "blobs", "sha256"));
        var marker = Path.Join(dir, "oci-layout");
        if (!File.Exists(marker)) WriteAtomic(marker, "{\"imageLayoutVersion\":\"1.0.0\"}"u8);
        return new OciLayoutWriter(dir);
    }

    public Descriptor WriteBlob(byte[] data, string mediaType)
    {
        var digest = Digest.Sha256(data);
        var final = Path.Join(BlobsDir, Digest.Hex(digest));
        if (!File.Exists(final))
        {
            var temp = Path.Join(BlobsDir, ".tmp-" + Guid.NewGuid().ToString("N"));
            File.WriteAllBytes(temp, data);
            LayerWriter.Commit(temp, final);
        }
        return new Descriptor { MediaType = mediaType, Digest = digest, Size = data.Length };
    }

    /// <summary>Adds the manifest to index.json under <paramref name="tag"/>, replacing an image with that tag.</summary>
    public void Tag(Descriptor manifest, string? tag, Platform? platform)
    {
        var indexPath = Path.Join(Root, "index.json");
        var index = File.Exists(indexPath)
            ? OciJson.Deserialize<ImageIndex>(File.ReadAllBytes(indexPath), indexPath)
            : new ImageIndex();
        var entry = new Descriptor
        {
            MediaType = manifest.MediaType, Digest = manifest.Digest, Size = manifest.Size, Platform = platform,
            Annotations = tag != null ? new SortedDictionary<string, string>(StringComparer.Ordinal) { [Annotations.RefName] = tag } : null,
        };
        if (tag != null)
            index.Manifests.RemoveAll(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == tag);
        else
            index.Manifests.RemoveAll(m => m.Digest == manifest.Digest && m.Annotations?.ContainsKey(Annotations.RefName) != true);
        index.Manifests.Add(entry);
        WriteAtomic(indexPath, OciJson.Serialize(index));
    }

    private static void WriteAtomic(string path, ReadOnlySpan<byte> data)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllBytes(temp, data.ToArray());
        File.Move(temp, path, overwrite: true);
    }
}
