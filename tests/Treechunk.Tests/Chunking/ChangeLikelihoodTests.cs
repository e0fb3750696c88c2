using Treechunk.Chunking;

namespace Treechunk.Tests.Chunking;

public class ChangeLikelihoodTests
{
    private const long Day = 86400;
    private static readonly long T0 = 1_700_000_000;

    private static Component Pkg(string name, params long[] daysAgo) =>
        new(name, ComponentKind.Package, 1000, 1, daysAgo.Select(d => T0 - d * Day).OrderDescending().ToList());

    [Fact]
    public void State_and_unowned_always_change_and_no_history_is_the_documented_default()
    {
        Assert.Equal(1.0, ChangeLikelihood.OfWhole(new Component("state", ComponentKind.State, 1, 1)));
        Assert.Equal(1.0, ChangeLikelihood.OfWhole(new Component("unowned:opt", ComponentKind.Unowned, 1, 1)));
        Assert.Equal(ChangeLikelihood.Unknown, ChangeLikelihood.OfWhole(new Component("app", ComponentKind.Xattr, 1, 1)));
        Assert.Equal(ChangeLikelihood.Unknown, ChangeLikelihood.OfWhole(Pkg("quiet")));
    }

    [Fact]
    public void More_recent_changes_mean_a_likelier_change_and_old_ones_do_not_count()
    {
        var busy = ChangeLikelihood.OfWhole(Pkg("busy", 0, 30, 60, 90, 120, 200, 300, 400));
        var calm = ChangeLikelihood.OfWhole(Pkg("calm", 0, 365));
        // Entries more than two years before the newest one are outside the window.
        var calmWithOldHistory = ChangeLikelihood.OfWhole(Pkg("calm", 0, 365, 900, 1200, 2000));
        Assert.True(busy > calm, $"{busy} <= {calm}");
        Assert.Equal(calm, calmWithOldHistory);
        Assert.InRange(calm, 0.01, 0.99);
        // Poisson with half an entry of prior: (2 + 0.5) entries over two years, a quarter ahead.
        Assert.Equal(1 - Math.Exp(-2.5 / 2 * 0.25), calm, 12);
    }

    [Fact]
    public void A_package_is_read_against_its_own_history_not_the_trees_clock()
    {
        // The same package, built a year later with nothing new in its changelog, is just as likely to change.
        var before = Pkg("p", 10, 100, 500);
        var shifted = before with { ChangeTimes = before.ChangeTimes.Select(t => t + 365 * Day).ToList() };
        Assert.Equal(ChangeLikelihood.OfWhole(before), ChangeLikelihood.OfWhole(shifted));
    }

    [Fact]
    public void Parts_of_one_package_change_through_their_package()
    {
        var pkg = Pkg("perl", 0, 100, 200);
        double p = ChangeLikelihood.OfWhole(pkg);
        var bin = pkg with { Name = "perl@usr/bin/perl", Parent = "perl", Part = PartKind.Rebuilt };
        var data1 = pkg with { Name = "perl@usr/share/perl/a", Parent = "perl", Part = PartKind.Data };
        var data2 = pkg with { Name = "perl@usr/share/perl/m", Parent = "perl", Part = PartKind.Data };
        Assert.Equal(p * ChangeLikelihood.RebuiltShare, ChangeLikelihood.OfLayer([bin]), 12);
        Assert.Equal(p * ChangeLikelihood.DataShare, ChangeLikelihood.OfLayer([data1]), 12);
        // Two data parts together: the package must change, then either part.
        var share = 1 - (1 - ChangeLikelihood.DataShare) * (1 - ChangeLikelihood.DataShare);
        Assert.Equal(p * share, ChangeLikelihood.OfLayer([data1, data2]), 12);
        // Two unrelated packages change independently.
        var other = Pkg("zlib", 0, 50);
        double q = ChangeLikelihood.OfWhole(other);
        Assert.Equal(1 - (1 - p) * (1 - q), ChangeLikelihood.OfLayer([pkg, other]), 12);
        Assert.True(ChangeLikelihood.OfLayer([data1, data2]) < ChangeLikelihood.OfLayer([data1, other]));
    }
}
