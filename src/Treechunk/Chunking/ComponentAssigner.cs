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
        var owner = new Dictionary<string, string>(entries.Count, StringComparer.Ordinal);
        var kinds = new Dictionary<string, ComponentKind>(StringComparer.Ordinal);
        var leftovers = new List<TreeEntry>();

        foreach (var e in entries)
        {
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
                else if (packages != null && packages.OwnerOf.TryGetValue(e.Path, out var pkg))
                    (name, kind) = (Sanitize(pkg), ComponentKind.Package);
            }
            if (name == null)
            {
                leftovers.Add(e);
                continue;
            }
            owner[e.Path] = name;
            kinds.TryAdd(name, kind);
        }

        // What nothing claims is cut into content-defined runs over the sorted path list, so one
        // changed file changes one small run instead of a catch-all layer.
        var runs = algorithm == ChunkAlgorithm.Fixed
            ? ContentDefinedSplitter.SplitFixed(leftovers, e => e.Size, chunkSize)
            : ContentDefinedSplitter.Split(leftovers, e => e.Path, e => e.Size, chunkSize);
        var runKind = algorithm == ChunkAlgorithm.Package ? ComponentKind.Unowned : ComponentKind.Chunk;
        var prefix = algorithm == ChunkAlgorithm.Package ? "unowned:" : "chunk:";
        foreach (var run in runs)
        {
            var name = Sanitize(prefix + run[0].Path);
            kinds.TryAdd(name, runKind);
            foreach (var e in run) owner[e.Path] = name;
        }

        // Every path of an inode lands in the layer of the path that carries the data.
        foreach (var e in entries)
            if (e.Type == EntryType.Hardlink)
                owner[e.Path] = owner.TryGetValue(e.LinkTarget!, out var target)
                    ? target
                    : throw new TreechunkException($"hardlink {e.Path} points at {e.LinkTarget}, which is not in the tree");

        var sizes = new Dictionary<string, Tally>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            var c = owner[e.Path];
            if (!sizes.TryGetValue(c, out var tally)) sizes[c] = tally = new Tally();
            tally.Size += e.Size;
            tally.Count++;
        }
        var components = sizes
            .Select(kv => new Component(kv.Key, kinds[kv.Key], kv.Value.Size, kv.Value.Count,
                kinds[kv.Key] == ComponentKind.Package && packages != null && packages.Components.TryGetValue(kv.Key, out var pc)
                    ? pc.ChangeTimes : []))
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
        return new ComponentMap(components, owner);
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
