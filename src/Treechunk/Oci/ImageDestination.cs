namespace Treechunk.Oci;

/// <summary>
/// Somewhere images are written: an OCI layout, an oci-archive, a registry. Blobs first, then
/// manifests, then tags; nothing is visible as an image until <see cref="Commit"/>, and a blob is
/// kept only once its bytes match its digest.
/// </summary>
public interface IImageDestination : IDisposable
{
    string Name { get; }

    bool HasBlob(Descriptor descriptor);

    /// <summary>
    /// Whether the destination holds this manifest and, by its own guarantee, every blob it
    /// names, so a copy can skip asking blob by blob. A registry gives that guarantee (it accepts
    /// a manifest only when its blobs are there and keeps what a manifest names); a directory
    /// does not, so the default is no.
    /// </summary>
    bool HasCompleteImage(Descriptor manifest) => false;

    /// <summary>
    /// Stores a blob, verifying size and digest while it streams; on a mismatch nothing is kept.
    /// A local file (a cached layer) is hardlinked where the transport can.
    /// </summary>
    void PutBlob(Descriptor descriptor, BlobContent content);

    /// <summary>A blob whose digest is known only once it is written (a layer being compressed).</summary>
    IBlobWriter CreateBlob();

    void PutManifest(Descriptor descriptor, ReadOnlySpan<byte> raw);

    /// <summary>Names a manifest or index under <paramref name="tag"/> (replacing what had it), or lists it untagged; takes effect at <see cref="Commit"/>.</summary>
    void Tag(Descriptor descriptor, string? tag);

    /// <summary>Makes what was written visible at once (index.json replaced last, an archive renamed into place).</summary>
    void Commit();
}

/// <summary>A blob being written; disposed without <see cref="Commit"/>, nothing of it remains.</summary>
public interface IBlobWriter : IDisposable
{
    Stream Stream { get; }

    /// <summary>Names the finished blob (its digest, computed by the writer while writing).</summary>
    void Commit(string digest);
}
