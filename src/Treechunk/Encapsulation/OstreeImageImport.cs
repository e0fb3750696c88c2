using Treechunk.Build;
using Treechunk.Layers;
using Treechunk.Oci;
using Treechunk.Ostree;
using Treechunk.Trees;

namespace Treechunk.Encapsulation;

public sealed record ImportResult(string Commit, bool Exact, string? Ref);

/// <summary>A commit carried by an image, and the image's tree without the carrier files.</summary>
public sealed record EmbeddedCommit(string Checksum, byte[] CommitBytes, OstreeCommit Commit, byte[] RootMetaBytes, byte[]? CommitMeta, ITree Tree)
{
    /// <summary>The same last layer container-encapsulate writes, so a rechunked image still imports to this commit.</summary>
    public FinalLayer ToFinalLayer() => OstreeImageExport.CommitLayer(Checksum, CommitBytes, Commit.RootMeta, RootMetaBytes, CommitMeta, Tree);
}

/// <summary>
/// import-ostree: an image back into a repo. For an image treechunk exported, content,
/// dirtree and dirmeta objects are rebuilt from the layers, checked against the embedded
/// commit's root, and the original commit object is written as is, so the checksum is the
/// original one. Any other image becomes a new commit of its flattened tree.
/// </summary>
public static class OstreeImageImport
{
    public static ImportResult Import(Image image, OstreeRepo repo, string? refName, long timestamp, Action<string>? warn = null)
    {
        if (refName != null) OstreeRepo.ValidateRefName(refName);
        using var flattened = FlattenedImageTree.Open(image, warn);
        var labels = image.Config.Config?.Labels;
        var checksum = labels?.GetValueOrDefault(OstreeImageExport.CommitLabel);
        var commitPath = checksum != null ? OstreeImageExport.EmbeddedPath(checksum, ObjectType.Commit) : null;

        if (checksum == null || commitPath == null || flattened.Find(commitPath) is not { } commitEntry)
        {
            // Not ours (or not an OSTree export at all): commit the flattened tree as a new commit.
            var created = DateTimeOffset.TryParse(image.Config.Created, out var c) ? c.ToUnixTimeSeconds() : timestamp;
            var fresh = CommitWriter.Commit(repo, flattened, new CommitOptions
            {
                Subject = $"Import of {image.Name}",
                Timestamp = (ulong)Math.Max(0, created),
                Ref = refName,
                Warn = warn,
                // OSTree cannot hold device nodes, fifos or sockets; an image may.
                SkipSpecialFiles = true,
            });
            return new ImportResult(fresh, Exact: false, refName);
        }

        var embedded = FindEmbeddedCommit(image, flattened)!;
        var commit = embedded.Commit;
        using var tree = embedded.Tree;
        var (rootTree, rootMeta) = CommitWriter.WriteTree(repo, tree, new CommitOptions { Warn = warn, RootMeta = DirMeta.Parse(embedded.RootMetaBytes) });
        if (rootTree != commit.RootTree || rootMeta != commit.RootMeta)
            throw new TreechunkException(
                $"image layers do not match embedded commit {checksum}: rebuilt root tree {rootTree[..12]}/{rootMeta[..12]}, commit says {commit.RootTree[..12]}/{commit.RootMeta[..12]}",
                ExitCodes.VerificationFailed);
        repo.WriteMetadata(ObjectType.Commit, embedded.CommitBytes);
        if (embedded.CommitMeta != null) repo.WriteCommitMeta(checksum, embedded.CommitMeta);
        if (refName != null) repo.SetRef(refName, checksum);
        return new ImportResult(checksum, Exact: true, refName);
    }

    /// <summary>
    /// The commit an image made by container-encapsulate carries, verified, with the image's
    /// tree minus what the exporter added; null for any other image.
    /// </summary>
    public static EmbeddedCommit? FindEmbeddedCommit(Image image, ITree flattened)
    {
        var checksum = image.Config.Config?.Labels?.GetValueOrDefault(OstreeImageExport.CommitLabel);
        if (checksum == null) return null;
        OstreeObjects.ValidateChecksum(checksum);
        if (flattened.Find(OstreeImageExport.EmbeddedPath(checksum, ObjectType.Commit)) is not { } commitEntry) return null;
        var commitBytes = ReadAll(flattened, commitEntry);
        if (OstreeObjects.Sha256Hex(commitBytes) != checksum)
            throw new TreechunkException($"embedded commit object {checksum} is corrupt", ExitCodes.VerificationFailed);
        var commit = OstreeCommit.Parse(commitBytes);
        var rootMetaEntry = flattened.Find(OstreeImageExport.EmbeddedPath(commit.RootMeta, ObjectType.DirMeta))
                            ?? throw new TreechunkException($"image carries commit {checksum} but not its root dirmeta {commit.RootMeta}", ExitCodes.VerificationFailed);
        var rootMetaBytes = ReadAll(flattened, rootMetaEntry);
        if (OstreeObjects.Sha256Hex(rootMetaBytes) != commit.RootMeta)
            throw new TreechunkException($"embedded dirmeta {commit.RootMeta} is corrupt", ExitCodes.VerificationFailed);
        var commitMetaPath = OstreeImageExport.EmbeddedPath(checksum, ObjectType.CommitMeta);
        byte[]? commitMeta = flattened.Find(commitMetaPath) is { } cm ? ReadAll(flattened, cm) : null;

        // Leave out what the exporter added: the embedded objects and the directories it had to create for them.
        var injected = new HashSet<string>(StringComparer.Ordinal) { commitEntry.Path, rootMetaEntry.Path, commitMetaPath };
        if (image.Manifest.Layers[^1].Annotations?.GetValueOrDefault(ChunkedImageBuilder.SynthesizedDirsAnnotation) is { } dirs)
            foreach (var d in dirs.Split(',', StringSplitOptions.RemoveEmptyEntries)) injected.Add(d);
        return new EmbeddedCommit(checksum, commitBytes, commit, rootMetaBytes, commitMeta,
            new FilteredTree(flattened, e => !injected.Contains(e.Path)));
    }

    private static byte[] ReadAll(ITree tree, TreeEntry e)
    {
        if (e.Size > 16 << 20) throw new TreechunkException($"{e.Path} is too large for an OSTree metadata object");
        using var s = tree.OpenContent(e);
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
