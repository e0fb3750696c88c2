using System.Text;
using Treechunk.Packages;
using Treechunk.Trees;

namespace Treechunk.Chunking;

/// <summary>
/// Decides which component every path of a tree belongs to. Precedence for the package
/// algorithm: hardlink group (all paths of an inode follow the first) > user.component xattr >
/// volatile state > large file > owning source package > content-defined unowned run.
/// </summary>
public static class ComponentAssigner
{
    public const string StateComponent = "state";
    public const string ComponentXattr = "user.component";

    /// <summary>Package databases, caches and generated files that change on every update.</summary>
    private static readonly string[] StatePrefixes =
    [
        "var/lib/dpkg/", "var/lib/apt/", "var/cache/", "var/log/", "var/lib/rpm/", "var/lib/dnf/",
        "var/lib/yum/", "usr/lib/sysimage/", "var/lib/ucf/", "var/lib/systemd/",
    ];

    private static readonly HashSet<string> StateFiles = new(StringComparer.Ordinal)
    {
        "etc/ld.so.cache", "usr/share/info/dir", "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-",
        "etc/subuid-", "etc/subgid-", "etc/machine-id", "var/lib/dbus/machine-id", "etc/.pwd.lock",
    };

    public static bool IsState(string path)
    {
        if (StateFiles.Contains(path)) return true;
        foreach (var p in StatePrefixes)
            if (path.StartsWith(p, StringComparison.Ordinal) || (p.Length == path.Length + 1 && p.StartsWith(path, StringComparison.Ordinal)))
                return true;
        return false;
    }

    public static ComponentMap Assign(ITree tree, ChunkAlgorithm algorithm, long chunkSize, IPackageDatabase? packages)
    {
        var entries = tree.Entries;
        // Component of each entry by its position in the tree (null: not decided yet).
        var owner = new string?[entries.Count];
        var kinds = new Dictionary<string, ComponentKind>(StringComparer.Ordinal);
        var leftovers = new List<int>();

        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Type == EntryType.Hardlink) continue; // follows its first path, below
            string? name = null;
            ComponentKind kind = default;
            if (algorithm == ChunkAlgorithm.Package)
            {
                if (e.GetXattr(ComponentXattr) is { Length: > 0 } x)
                    (name, kind) = (Sanitize(Encoding.UTF8.GetString(x)), ComponentKind.Xattr);
                else if (IsState(e.Path))
                    (name, kind) = (StateComponent, ComponentKind.State);
                else if (e.Type == EntryType.Regular && e.Size >= chunkSize)
                    (name, kind) = (Sanitize("file:" + e.Path), ComponentKind.LargeFile);
                else if (packages?.OwnerOfEntry(e) is { } pkg)
                    (name, kind) = (Sanitize(pkg), ComponentKind.Package);
            }
            if (name == null)
            {
                leftovers.Add(i);
                continue;
            }
            owner[i] = name;
            kinds.TryAdd(name, kind);
        }

        var parts = algorithm == ChunkAlgorithm.Package ? CutLargePackages(entries, owner, kinds, chunkSize) : [];
        var carried = new HashSet<int>();
        if (algorithm == ChunkAlgorithm.Package) leftovers = GiveDirectoriesToTheirContent(entries, owner, leftovers, carried);

        // What nothing claims is cut into content-defined runs over the sorted path list, so one
        // changed file changes one small run instead of a catch-all layer.
        var runs = algorithm == ChunkAlgorithm.Fixed
            ? ContentDefinedSplitter.SplitFixed(leftovers, i => entries[i].Size, chunkSize)
            : ContentDefinedSplitter.Split(leftovers, i => entries[i].Path, i => entries[i].Size, chunkSize);
        var runKind = algorithm == ChunkAlgorithm.Package ? ComponentKind.Unowned : ComponentKind.Chunk;
        var prefix = algorithm == ChunkAlgorithm.Package ? "unowned:" : "chunk:";
        foreach (var run in runs)
        {
            var name = Sanitize(prefix + entries[run[0]].Path);
            kinds.TryAdd(name, runKind);
            foreach (var i in run) owner[i] = name;
        }

        // Every path of an inode lands in the layer of the path that carries the data.
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Type != EntryType.Hardlink) continue;
            owner[i] = tree.Find(e.LinkTarget!) is { } target && IndexOf(entries, target, i) is var t && t >= 0 && owner[t] != null
                ? owner[t]
                : throw new TreechunkException($"hardlink {e.Path} points at {e.LinkTarget}, which is not in the tree");
        }

        var sizes = new Dictionary<string, Tally>(StringComparer.Ordinal);
        for (int i = 0; i < entries.Count; i++)
        {
            var c = owner[i]!;
            if (!sizes.TryGetValue(c, out var tally)) sizes[c] = tally = new Tally();
            if (carried.Contains(i)) continue;
            tally.Size += entries[i].Size;
            tally.Count++;
        }
        var components = sizes
            .Select(kv =>
            {
                var part = parts.GetValueOrDefault(kv.Key);
                var whole = part.Parent ?? kv.Key;
                return new Component(kv.Key, kinds[kv.Key], kv.Value.Size, kv.Value.Count,
                    kinds[kv.Key] == ComponentKind.Package && packages != null && packages.Components.TryGetValue(whole, out var pc)
                        ? pc.ChangeTimes : [])
                { Parent = part.Parent, Part = part.Kind };
            })
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
        return new ComponentMap(components, entries, owner!);
    }

    /// <summary>
    /// The position of <paramref name="target"/> among the sorted entries, found by binary search
    /// (hardlink targets are few; a map from entry to position would cost every entry).
    /// Its first path sorts before the hardlink at <paramref name="before"/>.
    /// </summary>
    private static int IndexOf(IReadOnlyList<TreeEntry> entries, TreeEntry target, int before)
    {
        int lo = 0, hi = before - 1;
        while (lo <= hi)
        {
            int mid = lo + (hi - lo) / 2;
            if (ReferenceEquals(entries[mid], target)) return mid;
            int c = TreeEntry.ComparePaths(entries[mid], target);
            if (c == 0) return mid;
            if (c < 0) lo = mid + 1;
            else hi = mid - 1;
        }
        for (int i = 0; i < entries.Count; i++)
            if (ReferenceEquals(entries[i], target)) return i;
        return -1;
    }

    /// <summary>
    /// The size parts of a large package are cut at: half the chunk size (8 MiB by default).
    /// Smaller parts would each change less often, but at 64 layers they must share layers with
    /// other packages, which costs more than it saves (measured on bench/update-efficiency.sh:
    /// 1 MiB parts 1.91x of the ideal update, 4 MiB 1.84x, 8 MiB 1.78x); within a part, a
    /// zstd:chunked partial pull fetches only the changed files.
    /// </summary>
    public static long PartTarget(long chunkSize) => Math.Max(64 << 10, chunkSize / 2);

    /// <summary>
    /// Cuts each package of at least the chunk size (the large-file threshold) into parts: its rebuilt
    /// files (executables, shared objects, kernel modules, manual pages, changelogs: a rebuild rewrites them
    /// all) apart from its data, and each of the two into content-defined runs of about
    /// <see cref="PartTarget"/>. An update of a large package then re-downloads the parts it
    /// changed, not the package: a security fix to perl rewrote 13 of its 27 MB of binaries and
    /// 1 of its 31 MB of modules. Parts are named "package@first path" and their boundaries
    /// depend only on nearby paths, so the next build names the same parts again.
    /// </summary>
    private static Dictionary<string, (string? Parent, PartKind Kind)> CutLargePackages(
        IReadOnlyList<TreeEntry> entries, string?[] owner, Dictionary<string, ComponentKind> kinds, long chunkSize)
    {
        var byPackage = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < entries.Count; i++)
        {
            if (entries[i].Type == EntryType.Hardlink || owner[i] is not { } name || kinds[name] != ComponentKind.Package) continue;
            if (!byPackage.TryGetValue(name, out var list)) byPackage[name] = list = [];
            list.Add(i);
            sizes[name] = sizes.GetValueOrDefault(name) + entries[i].Size;
        }
        var parts = new Dictionary<string, (string? Parent, PartKind Kind)>(StringComparer.Ordinal);
        foreach (var (package, files) in byPackage)
        {
            if (sizes[package] < chunkSize) continue;
            kinds.Remove(package);
            foreach (var (kind, members) in new[] { (PartKind.Rebuilt, files.Where(i => IsRebuilt(entries[i])).ToList()), (PartKind.Data, files.Where(i => !IsRebuilt(entries[i])).ToList()) })
            foreach (var run in ContentDefinedSplitter.Split(members, i => entries[i].Path, i => entries[i].Size, PartTarget(chunkSize)))
            {
                var name = Sanitize($"{package}@{entries[run[0]].Path}");
                parts[name] = (package, kind);
                kinds[name] = ComponentKind.Package;
                foreach (var i in run) owner[i] = name;
            }
        }
        return parts;
    }

    private static readonly string[] RebuiltPrefixes =
        ["bin/", "sbin/", "usr/bin/", "usr/sbin/", "usr/libexec/", "usr/games/", "lib/modules/", "usr/lib/modules/"];

    /// <summary>Files a rebuild of their package rewrites, judged by path so no content is read.</summary>
    internal static bool IsRebuilt(TreeEntry e)
    {
        var path = e.Path;
        foreach (var p in RebuiltPrefixes)
            if (path.StartsWith(p, StringComparison.Ordinal)) return e.Type != EntryType.Directory;
        if (e.Type == EntryType.Directory) return false;
        var name = path[(path.LastIndexOf('/') + 1)..];
        int so = name.IndexOf(".so", StringComparison.Ordinal);
        if (so > 0 && (so + 3 == name.Length || name[so + 3] == '.')) return true;
        // Manual pages are generated at build time with the version and date in them.
        return path.StartsWith("usr/share/man/", StringComparison.Ordinal)
               || path.StartsWith("usr/share/doc/", StringComparison.Ordinal) && name.StartsWith("changelog", StringComparison.Ordinal);
    }

    /// <summary>
    /// A directory no package owns (/opt, a tool's own tree) goes with the first component below
    /// it. Every layer carries its files' parent directories anyway, so this adds nothing to any
    /// layer; left in an unowned run instead, the directory would make a layer that changes
    /// whenever a directory is added anywhere. Only directories with nothing owned below them
    /// stay unowned. The directories given away are not counted in their taker's statistics.
    /// </summary>
    private static List<int> GiveDirectoriesToTheirContent(IReadOnlyList<TreeEntry> entries, string?[] owner, List<int> leftovers, HashSet<int> carried)
    {
        var left = new List<int>(leftovers.Count);
        foreach (var at in leftovers)
        {
            var e = entries[at];
            string? taker = null;
            if (e.Type == EntryType.Directory)
            {
                // Entries under a directory sort among those sharing its path as a prefix (with
                // siblings like "a-b" next to "a/"), so the scan ends at the first that does not.
                var path = e.Path;
                var below = path + "/";
                for (int j = at + 1; j < entries.Count && entries[j].PathStartsWith(path); j++)
                    if (owner[j] is { } o && entries[j].PathStartsWith(below))
                    {
                        taker = o;
                        break;
                    }
            }
            if (taker == null) left.Add(at);
            else
            {
                owner[at] = taker;
                carried.Add(at);
            }
        }
        return left;
    }

    // A class, not a tuple: see DirectoryTree.RawEntry.
    private sealed class Tally
    {
        public long Size;
        public int Count;
    }

    /// <summary>Component names travel comma-separated in annotations, so they cannot hold commas or control characters.</summary>
    public static string Sanitize(string name)
    {
        if (name.Length > 0 && !char.IsWhiteSpace(name[0]) && !char.IsWhiteSpace(name[^1]) && !name.Any(c => c == ',' || char.IsControl(c)))
            return name;
        var sb = new StringBuilder(name.Length);
        foreach (var c in name.Trim())
            sb.Append(c == ',' || char.IsControl(c) ? '_' : c);
        return sb.Length == 0 ? "_" : sb.ToString();
    }
}
