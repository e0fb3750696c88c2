using Treechunk.Build;
using Treechunk.Oci;
using Treechunk.Ostree;
using Treechunk.Trees;

namespace Treechunk.Encapsulation;

/// <summary>
/// container-encapsulate: an OSTree commit as a chunked image. The tree streams from the repo
/// through the ordinary planner and writer; the commit object itself (with its detached
/// metadata and the root dirmeta) travels in a small last layer under sysroot/ostree/repo, so
/// an importer can rebuild the exact commit and a metadata-only change touches only that layer.
/// </summary>
public static class OstreeImageExport
{
    public const string CommitLabel = "ostree.commit";
    public const string FinalDiffIdLabel = "ostree.final-diffid";
    public const string CommitLayerComponent = "ostree-commit";
    public const string ObjectsDir = "sysroot/ostree/repo/objects";

    /// <summary>
    /// Exports <paramref name="rev"/> into <paramref name="destination"/>. SELinux labels are
    /// always kept (they are part of the commit's checksums), and the image is created at the
    /// commit's timestamp unless SOURCE_DATE_EPOCH says otherwise, as ostree-ext does.
    /// </summary>
    public static BuildResult Export(OstreeRepo repo, string rev, IImageDestination destination, BuildOptions options, IBuildProgress? progress = null)
    {
        progress ??= NullProgress.Instance;
        progress.Phase($"Reading commit {rev}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var tree = CommitTree.Open(repo, rev);
        // Reading the commit is this build's scan: the "scan" phase of --metrics-file.
        var read = clock.Elapsed.TotalSeconds;
        var checksum = tree.CommitChecksum;
        var commit = tree.Commit;

        var commitMetaPath = repo.ObjectPath(checksum, ObjectType.CommitMeta);
        var finalLayer = CommitLayer(checksum, repo.ReadMetadataObject(checksum, ObjectType.Commit),
            commit.RootMeta, repo.ReadMetadataObject(commit.RootMeta, ObjectType.DirMeta),
            File.Exists(commitMetaPath) ? File.ReadAllBytes(commitMetaPath) : null, tree);

        var labels = new Dictionary<string, string>(options.Labels) { [CommitLabel] = checksum };
        if (commit.MetadataString("version") is { } version)
        {
            labels.TryAdd("org.opencontainers.image.version", version);
            labels.TryAdd("version", version);
        }
        if (tree.Entries.Any(IsKernel))
        {
            labels["ostree.bootable"] = "true";
            labels["containers.bootc"] = "1";
        }
        options = options with
        {
            Labels = labels,
            FinalLayer = finalLayer,
            KeepSelinux = true,
            Created = (long)Math.Min(commit.Timestamp, 253402300799UL),
        };
        var result = ChunkedImageBuilder.Build(tree, destination, options, progress);
        result.Metrics.ScanSeconds = read;
        return result;
    }

    /// <summary>The last layer: commit object, root dirmeta and detached metadata as files under sysroot/ostree/repo/objects.</summary>
    public static FinalLayer CommitLayer(string checksum, byte[] commit, string rootMeta, byte[] rootMetaBytes, byte[]? commitMeta, ITree tree)
    {
        var files = new List<(TreeEntry, byte[]?)>
        {
            Embedded(checksum, ObjectType.Commit, commit),
            Embedded(rootMeta, ObjectType.DirMeta, rootMetaBytes),
        };
        if (commitMeta != null) files.Add(Embedded(checksum, ObjectType.CommitMeta, commitMeta));
        return new FinalLayer(new MemoryTree(files), CommitLayerComponent, tree) { DiffIdLabel = FinalDiffIdLabel };
    }

    /// <summary>usr/lib/modules/VERSION/vmlinuz: the tree can boot.</summary>
    public static bool IsKernel(TreeEntry e) =>
        e.Type == EntryType.Regular && e.Path.StartsWith("usr/lib/modules/", StringComparison.Ordinal) &&
        e.Path.EndsWith("/vmlinuz", StringComparison.Ordinal) && e.Path.Count(c => c == '/') == 4;

    public static string EmbeddedPath(string checksum, ObjectType type) =>
        $"{ObjectsDir}/{checksum[..2]}/{checksum[2..]}.{OstreeObjects.Extension(type, RepoMode.Archive)}";

    private static (TreeEntry, byte[]?) Embedded(string checksum, ObjectType type, byte[] bytes) =>
        (new TreeEntry { Path = EmbeddedPath(checksum, type), Type = EntryType.Regular, Mode = 0x1A4, Size = bytes.Length }, bytes);
}
