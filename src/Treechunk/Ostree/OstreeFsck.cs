namespace Treechunk.Ostree;

/// <summary>One missing or corrupt object; <see cref="Path"/> is where in a tree it was first met, if in one.</summary>
public sealed record FsckProblem(string Checksum, ObjectType Type, ObjectProblem Problem, string Detail, string? Path)
{
    public string TypeName => Type switch
    {
        ObjectType.File => "file",
        ObjectType.DirTree => "dirtree",
        ObjectType.DirMeta => "dirmeta",
        ObjectType.Commit => "commit",
        _ => "commitmeta",
    };

    public override string ToString() =>
        $"{(Problem == ObjectProblem.Missing ? "missing" : "corrupt")} {TypeName} {Checksum}" +
        (Path != null ? $" (/{Path})" : "") + (Detail.Length > 0 ? ": " + Detail : "");
}

public sealed record FsckReport(IReadOnlyList<FsckProblem> Problems, int Commits, long Objects);

/// <summary>
/// Checks every object reachable from one ref or from all refs: that it exists and that its
/// bytes (for content objects: header and full content) hash to its name. Keeps going past
/// bad objects so that one run names all of them; a bad dirtree's children cannot be reached
/// and so are not checked.
/// </summary>
public static class OstreeFsck
{
    public static IReadOnlyList<FsckProblem> Run(OstreeRepo repo, string? rev, Action<string>? progress) =>
        Check(repo, rev, progress).Problems;

    public static FsckReport Check(OstreeRepo repo, string? rev, Action<string>? progress)
    {
        var problems = new List<FsckProblem>();
        var seen = new HashSet<(string, ObjectType)>();
        long objects = 0;
        int commits = 0;
        var buffer = new byte[128 * 1024];

        // Returns false when the object was checked before or is bad, so the caller does not descend twice.
        bool Try(string checksum, ObjectType type, string? path, Action check)
        {
            if (!seen.Add((checksum, type))) return false;
            objects++;
            if (objects % 10_000 == 0) progress?.Invoke($"{objects} objects checked");
            try
            {
                check();
                return true;
            }
            catch (OstreeObjectException e)
            {
                problems.Add(new FsckProblem(e.Checksum, e.Type, e.Problem, e.Detail, path));
                return false;
            }
        }

        List<string> starts = rev != null ? [repo.ResolveRev(rev)] : repo.ListRefs().Values.Distinct().ToList();
        var queue = new Queue<string>(starts);
        while (queue.Count > 0)
        {
            var checksum = queue.Dequeue();
            OstreeCommit? commit = null;
            if (!Try(checksum, ObjectType.Commit, null, () => commit = repo.ReadCommit(checksum))) continue;
            commits++;
            progress?.Invoke($"checking commit {checksum}");
            if (repo.HasObject(checksum, ObjectType.CommitMeta))
                Try(checksum, ObjectType.CommitMeta, null, () => repo.ReadCommitMeta(checksum));
            Try(commit!.RootMeta, ObjectType.DirMeta, "", () => repo.ReadDirMeta(commit.RootMeta));
            CheckTree(commit.RootTree);
            // History is often pulled shallow: a parent that is not here is not a problem.
            if (commit.Parent != null && repo.HasObject(commit.Parent, ObjectType.Commit)) queue.Enqueue(commit.Parent);
        }
        return new FsckReport(problems, commits, objects);

        void CheckTree(string rootTree)
        {
            var pending = new Stack<(string Path, string Tree)>();
            pending.Push(("", rootTree));
            while (pending.Count > 0)
            {
                var (dir, treeChecksum) = pending.Pop();
                DirTree? tree = null;
                if (!Try(treeChecksum, ObjectType.DirTree, dir, () => tree = repo.ReadDirTree(treeChecksum))) continue;
                string Child(string name) => dir.Length == 0 ? name : dir + "/" + name;
                foreach (var f in tree!.Files)
                    Try(f.Checksum, ObjectType.File, Child(f.Name), () =>
                    {
                        using var obj = repo.OpenContent(f.Checksum);
                        while (obj.Content.Read(buffer) > 0) { }
                    });
                foreach (var d in tree.Dirs)
                {
                    Try(d.MetaChecksum, ObjectType.DirMeta, Child(d.Name), () => repo.ReadDirMeta(d.MetaChecksum));
                    pending.Push((Child(d.Name), d.TreeChecksum));
                }
            }
        }
    }
}
