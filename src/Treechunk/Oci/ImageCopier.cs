namespace Treechunk.Oci;

public sealed record CopyResult(Descriptor Descriptor, int BlobsCopied, int BlobsSkipped, long BytesCopied, int Manifests);

/// <summary>
/// Moves an image, or a whole index with every manifest it lists, from any source to any
/// destination: blobs the destination has are skipped, every copied blob is verified while it
/// streams, manifests and indexes are copied as their stored bytes (so digests are kept), and the
/// tag is set last.
/// </summary>
public static class ImageCopier
{
    public static CopyResult Copy(IImageSource source, Descriptor top, IImageDestination destination, string? tag,
        Action<string>? progress = null)
    {
        var state = new State(source, destination, progress);
        state.CopyManifest(top, 0);
        destination.Tag(top, tag);
        destination.Commit();
        return new CopyResult(top, state.Copied, state.Skipped, state.Bytes, state.Manifests);
    }

    private sealed class State(IImageSource source, IImageDestination destination, Action<string>? progress)
    {
        private readonly HashSet<string> _done = new(StringComparer.Ordinal);
        public int Copied, Skipped, Manifests;
        public long Bytes;

        public void CopyManifest(Descriptor d, int depth)
        {
            if (depth > 4) throw new TreechunkException($"{source.Name}: index nesting too deep");
            if (!_done.Add(d.Digest)) return;
            var raw = source.ReadManifest(d);
            if (MediaTypes.IsIndex(d.MediaType))
            {
                var index = OciJson.Deserialize<ImageIndex>(raw, $"index {d.Digest}");
                foreach (var child in index.Manifests)
                {
                    if (MediaTypes.IsIndex(child.MediaType) || MediaTypes.IsManifest(child.MediaType)) CopyManifest(child, depth + 1);
                    else CopyBlob(child);
                }
            }
            else if (MediaTypes.IsManifest(d.MediaType))
            {
                var manifest = OciJson.Deserialize<ImageManifest>(raw, $"manifest {d.Digest}");
                CopyBlob(manifest.Config);
                foreach (var layer in manifest.Layers) CopyBlob(layer);
            }
            else throw new TreechunkException($"{source.Name}: {d.Digest} has media type '{d.MediaType}', which is neither a manifest nor an index");
            Manifests++;
            destination.PutManifest(d, raw);
        }

        private void CopyBlob(Descriptor d)
        {
            Digest.Hex(d.Digest);
            if (!_done.Add(d.Digest)) return;
            if (destination.HasBlob(d))
            {
                Skipped++;
                progress?.Invoke($"skip {d.Digest} (already there)");
                return;
            }
            progress?.Invoke($"copy {d.Digest} ({d.Size} bytes)");
            destination.PutBlob(d, source.OpenBlob(d));
            Copied++;
            Bytes += d.Size;
        }
    }
}
