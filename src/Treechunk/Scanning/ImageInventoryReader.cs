using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Packages;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Scanning;

/// <summary>
/// Reads what an image has installed from its layers without unpacking it: each layer's tar is
/// streamed and only the few files that matter (os-release, dpkg's status, rpm's sqlite
/// database) are copied out; everything else is skipped over. Layers are read in parallel and
/// resolved top-down afterwards with the OCI rules (the uppermost layer that has a path wins,
/// a whiteout or an opaque directory hides what lies below).
/// </summary>
public static class ImageInventoryReader
{
    private const string DpkgStatus = DpkgDatabase.StatusPath;
    // Distroless images keep one status stanza per package here instead of one status file.
    private const string DpkgStatusDir = "var/lib/dpkg/status.d/";
    private static readonly string[] OsRelease = ["etc/os-release", "usr/lib/os-release"];
    private static readonly string[] RpmBerkeley = ["var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages"];

    private static bool Wanted(string path) =>
        path == DpkgStatus || Array.IndexOf(OsRelease, path) >= 0 || Array.IndexOf(RpmBerkeley, path) >= 0 ||
        RpmDatabase.SqlitePaths.Any(p => path == p || path == p + "-wal") ||
        (path.StartsWith(DpkgStatusDir, StringComparison.Ordinal) && path.IndexOf('/', DpkgStatusDir.Length) < 0 && !path.EndsWith(".md5sums", StringComparison.Ordinal));

    /// <summary>What one layer says about the wanted paths.</summary>
    private sealed class LayerFindings
    {
        /// <summary>Wanted regular files, copied to the scratch directory.</summary>
        public Dictionary<string, string> Files { get; } = new(StringComparer.Ordinal);
        /// <summary>Wanted paths that are something else here (a symlink, a directory): they hide lower layers' files all the same.</summary>
        public HashSet<string> Other { get; } = new(StringComparer.Ordinal);
        /// <summary>Wanted paths that are hardlinks, to the archive path of their data in this layer.</summary>
        public Dictionary<string, string> Hardlinks { get; } = new(StringComparer.Ordinal);
        public HashSet<string> Whiteouts { get; } = new(StringComparer.Ordinal);
        public HashSet<string> OpaqueDirs { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>Reads the inventory; the copied files live in a scratch directory for this call only.</summary>
    public static PackageInventory Read(Image image, Action<string>? log = null)
    {
        using var scratch = TempDirectory.Create("scan");
        var layers = image.Layers;
        var findings = new LayerFindings[layers.Count];
        Parallel.For(0, layers.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            findings[i] = ReadLayer(layers[i], Path.Join(scratch.Path, i.ToString()), hardlinkTargets: null);
        });

        // Top-down: the first layer that says anything about a path decides it.
        var decided = new Dictionary<string, string?>(StringComparer.Ordinal);
        var hiddenDirs = new List<string>();
        bool Hidden(string path) => hiddenDirs.Any(d => path.StartsWith(d + "/", StringComparison.Ordinal));
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            var f = findings[i];
            if (f.Hardlinks.Count > 0)
            {
                // Rare: the data sits under another name earlier in the same layer; read the layer once more for it.
                var targets = f.Hardlinks.Values.ToHashSet(StringComparer.Ordinal);
                var again = ReadLayer(layers[i], Path.Join(scratch.Path, i + "-links"), targets);
                foreach (var (path, target) in f.Hardlinks)
                    if (again.Files.TryGetValue(target, out var file)) f.Files[path] = file;
                    else f.Other.Add(path);
            }
            foreach (var (path, file) in f.Files)
                if (!decided.ContainsKey(path) && !Hidden(path)) decided[path] = file;
            foreach (var path in f.Other.Concat(f.Whiteouts))
                if (!Hidden(path)) decided.TryAdd(path, null);
            foreach (var dir in f.OpaqueDirs) hiddenDirs.Add(dir);
        }
        string? FileOf(string path) => decided.GetValueOrDefault(path);

        var notices = new List<string>();
        var databases = new List<string>();
        var packages = new List<InstalledPackage>();

        Distro? distro = null;
        foreach (var p in OsRelease)
            if (FileOf(p) is { } file) { distro = Distro.Parse(File.ReadAllText(file)); break; }
        if (distro == null) notices.Add("no os-release in the image: the distribution is unknown, so no vulnerability data can be matched by release");

        if (FileOf(DpkgStatus) is { } status)
        {
            using var s = File.OpenRead(status);
            packages.AddRange(DpkgPackages(DpkgDatabase.ParseStatus(s)));
            databases.Add(DpkgStatus);
        }
        var stanzas = decided.Where(kv => kv.Key.StartsWith(DpkgStatusDir, StringComparison.Ordinal) && kv.Value != null)
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        foreach (var (path, file) in stanzas)
        {
            using var s = File.OpenRead(file!);
            packages.AddRange(DpkgPackages(DpkgDatabase.ParseStatus(s)));
        }
        if (stanzas.Count > 0) databases.Add(DpkgStatusDir);

        foreach (var path in RpmDatabase.SqlitePaths)
        {
            if (FileOf(path) is not { } db) continue;
            if (FileOf(path + "-wal") is { } wal && new FileInfo(wal).Length > 0) File.Copy(wal, db + "-wal");
            packages.AddRange(RpmDatabase.ReadInstalled(db, path).Select(RpmPackageOf));
            databases.Add(path);
            break;
        }
        if (!databases.Any(d => d.Contains("rpm", StringComparison.Ordinal)) && RpmBerkeley.FirstOrDefault(p => FileOf(p) != null) is { } bdb)
            notices.Add($"rpm database {bdb} uses the Berkeley DB backend, which is not supported: its packages are not listed (convert it with: rpmdb --rebuilddb --define '_db_backend sqlite')");

        if (databases.Count == 0) notices.Add("no package database in the image (no dpkg status, no rpm sqlite database): nothing to match, the SBOM lists no packages");
        packages.Sort((a, b) =>
        {
            int c = a.Type.CompareTo(b.Type);
            if (c == 0) c = string.CompareOrdinal(a.Name, b.Name);
            if (c == 0) c = string.CompareOrdinal(a.Architecture, b.Architecture);
            return c != 0 ? c : string.CompareOrdinal(a.Version, b.Version);
        });
        log?.Invoke($"{image.Name}: {packages.Count} packages from {(databases.Count > 0 ? string.Join(", ", databases) : "no database")}; distribution {distro?.Id ?? "unknown"} {distro?.VersionId}");
        return new PackageInventory(distro, packages, databases, notices);
    }

    private static LayerFindings ReadLayer(Layer layer, string dir, HashSet<string>? hardlinkTargets)
    {
        var f = new LayerFindings();
        using var tar = layer.OpenUncompressed();
        using var reader = new TarReader(tar, layer.Name);
        while (reader.Next() is { } e)
        {
            var path = TreePaths.Normalize(e.Path.TrimStart('/'));
            if (string.IsNullOrEmpty(path)) continue;
            if (hardlinkTargets != null)
            {
                if (e.Type == TarEntryType.Regular && hardlinkTargets.Contains(path)) f.Files[path] = CopyOut(e, dir, f.Files.Count);
                continue;
            }
            var slash = path.LastIndexOf('/');
            var name = path[(slash + 1)..];
            if (name.StartsWith(".wh.", StringComparison.Ordinal))
            {
                var parent = slash < 0 ? "" : path[..slash];
                if (name == ".wh..wh..opq") f.OpaqueDirs.Add(parent);
                else if (!name.StartsWith(".wh..wh.", StringComparison.Ordinal))
                {
                    var gone = (parent.Length > 0 ? parent + "/" : "") + name[4..];
                    // A whited-out directory takes everything below it.
                    f.Whiteouts.Add(gone);
                    f.OpaqueDirs.Add(gone);
                }
                continue;
            }
            if (!Wanted(path)) continue;
            switch (e.Type)
            {
                case TarEntryType.Regular: f.Files[path] = CopyOut(e, dir, f.Files.Count); break;
                case TarEntryType.Hardlink when e.LinkName != null && TreePaths.Normalize(e.LinkName.TrimStart('/')) is { Length: > 0 } target:
                    f.Hardlinks[path] = target; break;
                default: f.Other.Add(path); break;
            }
        }
        return f;
    }

    private static string CopyOut(TarEntry e, string dir, int n)
    {
        Directory.CreateDirectory(dir);
        var file = Path.Join(dir, n.ToString());
        using var output = new FileStream(file, FileMode.CreateNew, FileAccess.Write);
        e.Content.CopyTo(output);
        return file;
    }

    private static IEnumerable<InstalledPackage> DpkgPackages(List<DpkgDatabase.Package> packages) =>
        packages.Select(p => new InstalledPackage(PackageType.Deb, p.Name, p.Version, p.Architecture, p.Source, p.SourceVersion));

    private static InstalledPackage RpmPackageOf(RpmInstalled p)
    {
        var version = (p.Epoch is { } e ? $"{e}:" : "") + p.Version + (p.Release.Length > 0 ? "-" + p.Release : "");
        var (sourceName, sourceVersion) = SourceOf(p.SourceRpm, p.Name, version);
        return new InstalledPackage(PackageType.Rpm, p.Name, version, p.Arch, sourceName, sourceVersion);
    }

    /// <summary>The source rpm's name and version-release; the binary's own when the source rpm is not of that shape.</summary>
    internal static (string Name, string Version) SourceOf(string? sourceRpm, string name, string version) =>
        string.IsNullOrEmpty(sourceRpm) ? (name, version) : RpmPackage.SplitSourceRpm(sourceRpm) ?? (name, version);
}
