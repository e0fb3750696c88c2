using Treechunk.Trees;

namespace Treechunk.Packages;

/// <summary>
/// A group of binary packages built from one source package. Binaries of one source are
/// rebuilt and updated together, so they are the unit that layers are made of.
/// </summary>
/// <param name="Name">The source package name.</param>
/// <param name="Packages">The installed binary package names, sorted (ordinal).</param>
/// <param name="ChangeTimes">Changelog entry times in Unix seconds, newest first, distinct; empty when unknown.</param>
public sealed record PackageComponent(string Name, IReadOnlyList<string> Packages, IReadOnlyList<long> ChangeTimes);

/// <summary>The package manager's record of which files of a tree belong to which component.</summary>
public interface IPackageDatabase
{
    /// <summary>"dpkg" or "rpm".</summary>
    string Kind { get; }

    /// <summary>
    /// Tree path to component name, for paths present in the tree only. A path several packages
    /// claim (shared directories) goes to the first package in ordinal name order.
    /// </summary>
    IReadOnlyDictionary<string, string> OwnerOf { get; }

    /// <summary>The component of one of the tree's entries (the entry itself, not a copy), or null: <see cref="OwnerOf"/> without making its path.</summary>
    string? OwnerOfEntry(TreeEntry entry) => OwnerOf.GetValueOrDefault(entry.Path);

    /// <summary>Components by name; enumerates in ordinal name order.</summary>
    IReadOnlyDictionary<string, PackageComponent> Components { get; }
}

public static class PackageDatabases
{
    /// <summary>
    /// Reads the package database of a tree, or returns null when the tree has none we can read.
    /// When a tree holds more than one (dpkg installed on Fedora, rpm installed on Debian), the
    /// one with more components is the system's own.
    /// </summary>
    /// <param name="warn">Receives one line about a database that exists but cannot be read (Berkeley DB rpmdb).</param>
    public static IPackageDatabase? Detect(ITree tree, Action<string>? warn = null)
    {
        var found = new List<IPackageDatabase>();
        var dpkg = DpkgDatabase.TryOpen(tree);
        if (dpkg != null) found.Add(dpkg);
        var rpm = RpmDatabase.TryOpen(tree, warn);
        if (rpm != null) found.Add(rpm);
        if (found.Count == 0) return null;
        // Stable order: dpkg wins a tie, so the choice never depends on anything but the tree.
        return found.OrderByDescending(d => d.Components.Count).First();
    }
}

/// <summary>
/// Maps the absolute paths a package manager recorded to the paths the tree really has, and
/// assigns owners deterministically.
/// </summary>
internal sealed class OwnershipBuilder
{
    // Same bound as the kernel's ELOOP: a symlink cycle in a hostile tree must not hang us.
    private const int MaxSymlinkHops = 40;

    private readonly ITree _tree;
    private readonly List<(string Component, RecordedPaths Paths)> _packages = [];

    public OwnershipBuilder(ITree tree) => _tree = tree;

    /// <summary>
    /// Records the files of one package. Callers add packages in ordinal name order, so the
    /// first claim on a shared path is the one that stays.
    /// </summary>
    public void AddPackage(string component, RecordedPaths paths) => _packages.Add((component, paths));

    /// <inheritdoc cref="AddPackage(string, RecordedPaths)"/>
    public void AddPackage(string component, IEnumerable<string> recordedPaths)
    {
        var paths = new RecordedPaths(_tree);
        foreach (var p in recordedPaths) paths.Add(p);
        AddPackage(component, paths);
    }

    /// <summary>
    /// One package's recorded paths, resolved against the tree as they are read. Nearly every
    /// path is in the tree as it is, as a file or a directory: those are kept as the tree's
    /// entry (8 bytes) instead of the recorded string (about 170 bytes), which on a tree of
    /// 500k files was the peak of the whole build. The rest (paths through usrmerge's symlinks,
    /// symlinks themselves, paths the tree lacks) stay strings for <see cref="Build"/>.
    /// </summary>
    /// <remarks>
    /// A path found as it is, and not a symlink, has only real directories above it (a scan
    /// never descends through a symlink), so it can neither be nor lie beneath one of the
    /// symlinked directories <see cref="Build"/> looks for, and it resolves to itself: keeping
    /// only its entry loses nothing. Safe to fill from one thread per package.
    /// </remarks>
    public sealed class RecordedPaths(ITree tree)
    {
        public List<TreeEntry> Found { get; } = [];
        public List<string> Other { get; } = [];

        public void Add(string recorded)
        {
            var p = TreeForm(recorded);
            if (p.IsEmpty) return;
            if (tree.Find(p) is { } entry && entry.Type != EntryType.Symlink) Found.Add(entry);
            else Other.Add(recorded);
        }
    }

    /// <summary>
    /// A recorded path in tree form ("/usr/bin/x" -> "usr/bin/x"): a span of the recorded string
    /// when it is already clean (nearly always), else <see cref="TreePaths.Normalize"/>'s
    /// result; empty for the root and for a path that leaves it.
    /// </summary>
    private static ReadOnlySpan<char> TreeForm(string recorded)
    {
        var s = recorded.AsSpan();
        if (s.Length > 1 && s[0] == '/' && s[^1] != '/' && !s.Contains("//", StringComparison.Ordinal) &&
            !s.Contains("/./", StringComparison.Ordinal) && !s.Contains("/../", StringComparison.Ordinal) &&
            !s.EndsWith("/.", StringComparison.Ordinal) && !s.EndsWith("/..", StringComparison.Ordinal))
            return s[1..];
        return TreePaths.Normalize(recorded) is { } normalized ? normalized.AsSpan() : [];
    }

    /// <summary>Component by tree entry, for the recorded paths the tree has.</summary>
    public EntryOwners Build()
    {
        // A path the database lists anything beneath is a directory to the package manager. When
        // the tree has a symlink there (usrmerge's bin -> usr/bin), the packages own the directory
        // the link leads to, not the link, which the installer made and no package ships. This is
        // decided over all packages: base-files lists /bin alone, bash lists /bin/bash. Only
        // recorded paths that land on a symlink can be such directories, so only they are
        // collected (a handful), then marked when some recorded path lies beneath one.
        var landsOnLink = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, paths) in _packages)
            foreach (var recorded in paths.Other)
            {
                var p = TreeForm(recorded);
                if (p.IsEmpty) continue;
                var resolved = ResolveParents(p);
                if (resolved != null && _tree.Find(resolved) is { Type: EntryType.Symlink }) landsOnLink.Add(p.ToString());
            }
        var directories = new HashSet<string>(StringComparer.Ordinal);
        if (landsOnLink.Count > 0)
        {
            var candidates = landsOnLink.GetAlternateLookup<ReadOnlySpan<char>>();
            foreach (var (_, paths) in _packages)
                foreach (var recorded in paths.Other)
                {
                    var p = TreeForm(recorded);
                    for (int at = 0, slash; (slash = p[at..].IndexOf('/')) >= 0; at += slash + 1)
                        if (candidates.TryGetValue(p[..(at + slash)], out var directory)) directories.Add(directory);
                }
        }
        var isDirectory = directories.GetAlternateLookup<ReadOnlySpan<char>>();

        var owner = new Dictionary<TreeEntry, string>(_packages.Sum(p => p.Paths.Found.Count), ReferenceEqualityComparer.Instance);
        foreach (var (component, paths) in _packages)
        {
            foreach (var entry in paths.Found) owner.TryAdd(entry, component);
            foreach (var recorded in paths.Other)
            {
                var p = TreeForm(recorded);
                if (p.IsEmpty) continue;
                var resolved = isDirectory.Contains(p) ? ResolveAll(p.ToString()) : ResolveParents(p);
                if (string.IsNullOrEmpty(resolved) || _tree.Find(resolved) is not { } entry) continue;
                owner.TryAdd(entry, component);
            }
        }
        return new EntryOwners(_tree, owner);
    }

    /// <summary>
    /// <see cref="ResolveParents(string)"/> for a span: the tree's own string when the path is
    /// there as it is (no allocation), else resolved through symlinks.
    /// </summary>
    private string? ResolveParents(ReadOnlySpan<char> path) => _tree.Find(path)?.Path ?? ResolveParents(path.ToString());

    /// <summary>
    /// The tree path a recorded path lands on when its parent directories are followed through
    /// symlinks; the last component is kept as is (a package may ship a symlink). Null when the
    /// path leaves the tree or loops.
    /// </summary>
    public string? ResolveParents(string path)
    {
        if (_tree.Find(path) != null) return path;
        var slash = path.LastIndexOf('/');
        if (slash < 0) return path;
        var parent = ResolveAll(path[..slash]);
        if (parent == null) return null;
        var name = path[(slash + 1)..];
        return parent.Length == 0 ? name : parent + "/" + name;
    }

    /// <summary>Follows symlinks in every component, like realpath inside the tree root.</summary>
    public string? ResolveAll(string path) => Resolve(_tree, path);

    internal static string? Resolve(ITree tree, string path)
    {
        if (IsPlain(tree, path)) return path;
        var pending = new Stack<string>();
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = parts.Length - 1; i >= 0; i--) pending.Push(parts[i]);
        var done = new List<string>();
        int hops = 0;
        while (pending.Count > 0)
        {
            var part = pending.Pop();
            if (part == ".") continue;
            if (part == "..")
            {
                // The root's parent is the root, as for a chrooted process.
                if (done.Count > 0) done.RemoveAt(done.Count - 1);
                continue;
            }
            done.Add(part);
            var current = string.Join('/', done);
            var entry = tree.Find(current);
            if (entry is not { Type: EntryType.Symlink, LinkTarget: { } target }) continue;
            if (++hops > MaxSymlinkHops) return null;
            done.RemoveAt(done.Count - 1);
            if (target.StartsWith('/')) done.Clear();
            var targetParts = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
            for (int i = targetParts.Length - 1; i >= 0; i--) pending.Push(targetParts[i]);
        }
        return string.Join('/', done);
    }

    /// <summary>
    /// True when no component of a normalized path is ".", ".." or a symlink in the tree, so it
    /// resolves to itself: the common case, answered without building the component stack.
    /// </summary>
    private static bool IsPlain(ITree tree, string path)
    {
        if (path.Length == 0 || path[0] == '/' || path.Contains("//", StringComparison.Ordinal)) return false;
        int start = 0;
        while (true)
        {
            int slash = path.IndexOf('/', start);
            int end = slash < 0 ? path.Length : slash;
            var part = path.AsSpan(start, end - start);
            if (part.Length == 0 || part is "." or "..") return false;
            if (tree.Find(path.AsSpan(0, end)) is { Type: EntryType.Symlink }) return false;
            if (slash < 0) return true;
            start = slash + 1;
        }
    }

    /// <summary>Opens a file of the tree by a path that may pass through symlinks; null when it is not a file.</summary>
    internal static Stream? OpenFile(ITree tree, string path)
    {
        var entry = FindFile(tree, path);
        return entry == null ? null : tree.OpenContent(entry);
    }

    /// <summary>The regular-file entry carrying the data of a path, following symlinks and hardlinks.</summary>
    internal static TreeEntry? FindFile(ITree tree, string path)
    {
        var resolved = Resolve(tree, path);
        if (string.IsNullOrEmpty(resolved)) return null;
        var entry = tree.Find(resolved);
        if (entry is { Type: EntryType.Hardlink, LinkTarget: { } first }) entry = tree.Find(first);
        return entry is { Type: EntryType.Regular } ? entry : null;
    }
}

/// <summary>
/// The package database's owners, kept by the tree's entries (no path string per entry; see
/// <see cref="TreeEntry"/>) and read by path through the tree's index.
/// </summary>
public sealed class EntryOwners(ITree tree, Dictionary<TreeEntry, string> byEntry) : IReadOnlyDictionary<string, string>
{
    public string? Of(TreeEntry entry) => byEntry.GetValueOrDefault(entry);

    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out string value)
    {
        value = null;
        return tree.Find(key) is { } e && byEntry.TryGetValue(e, out value);
    }

    public string this[string key] => TryGetValue(key, out var v) ? v : throw new KeyNotFoundException(key);
    public bool ContainsKey(string key) => TryGetValue(key, out _);
    public int Count => byEntry.Count;
    public IEnumerable<string> Keys => byEntry.Keys.Select(e => e.Path);
    public IEnumerable<string> Values => byEntry.Values;

    public IEnumerator<KeyValuePair<string, string>> GetEnumerator() =>
        byEntry.Select(kv => new KeyValuePair<string, string>(kv.Key.Path, kv.Value)).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
