function make_spm_folders(spm_dir, work_dir, designs)
% Estimate the SPM12 second-level fixture designs and save SPM's own tables.
%
% FORMAT make_spm_folders(spm_dir, work_dir)
% FORMAT make_spm_folders(spm_dir, work_dir, designs)
% spm_dir  - SPM12 r7771 with its MEX files built for Octave
% work_dir - scratch folder holding firstlevel/ (written by
%            prepare_firstlevel.py). One folder per design is written here,
%            with everything SPM writes (SPM.mat, beta_*, ResMS, RPV, mask,
%            con_*, spmT_*, ess_*, spmF_*) and spm_tables/*.json (SPM's own
%            results tables), plus spm_summary.json.
%            make_spm_folders.sh runs this in a scratch folder and copies the
%            results, so SPM.swd and SPM.xY.P hold the scratch folder's
%            absolute paths, as folders estimated on another machine do.
% designs  - (optional) cell array of design names to estimate, e.g.
%            {'ff_cells'} for a benchmark folder; default: all six below.
%
% Designs (spm_jobman: spm.stats.factorial_design, fmri_est, con):
%   ff_cells      flexible factorial, cue x session cells, no subject factor,
%                 independence yes, variance equal (OLS), 88 images, df 84
%   ff_subjects   flexible factorial, subject main effect + cue x session
%                 cells, independence yes, variance equal, df 63
%   onesample     one-sample t on con_0005 (cocaine-neutral, placebo), df 21
%   onesample_cov one-sample t on con_0005 + covariate
%                 cocaine_duration_years (centred, iCC = 1), df 20
%   twosample     two-sample t on con_0005, groups by sex (1 = M, 2 = F),
%                 independence yes, variance equal, df 20
%   paired        paired t, con_0005 vs con_0006 per participant, df 21
%
% Tables: for every contrast, xSPM from spm_getSPM with a non-interactive
% xSPM input (swd, title, Ic, n = 1, Im = [], thresDesc 'none' u = 0.001
% k = 0, and 'FWE' u = 0.05 k = 0), TabDat = spm_list('Table', xSPM).
% The JSON writer (enc/num1) is copied from scripts/spm_reference/spm_tables.m
% and the table keys follow tests/data/spm/README.md.

all_designs = {'ff_cells', 'ff_subjects', 'onesample', 'onesample_cov', ...
    'twosample', 'paired'};
if nargin < 3, designs = all_designs; end
if ischar(designs), designs = {designs}; end
bad = designs(~ismember(designs, all_designs));
if ~isempty(bad), error('unknown design %s', bad{1}); end
want = @(name) any(strcmp(designs, name));

addpath(spm_dir);
spm('defaults','fmri');
spm_get_defaults('cmdline',true);
spm_jobman('initcfg');

fl   = fullfile(work_dir, 'firstlevel');
tab  = read_tsv(fullfile(fl, 'participants.tsv'));
pids = tab.participant_id;
ns   = numel(pids);
P    = cell(ns, 6);
for s = 1:ns
    for k = 1:6
        P{s,k} = [fullfile(fl, pids{s}, sprintf('con_%04d.nii', k)) ',1'];
    end
end
% conditions: con_0001 cocaine/placebo, con_0002 neutral/placebo,
% con_0003 cocaine/nac, con_0004 neutral/nac; levels cue 1 cocaine 2 neutral,
% session 1 placebo 2 nac
conds = [1 1; 2 1; 1 2; 2 2];
dur   = str2double(tab.cocaine_duration_years);
sex   = tab.sex;
assert(all(isfinite(dur)));
assert(all(ismember(sex, {'M','F'})));

summary = struct();

% ---------------------------------------------------------------- ff_cells
if want('ff_cells')
d  = fullfile(work_dir, 'ff_cells');
fd = base_design(d);
fd.des.fblock.fac(1) = factor_spec('cue');
fd.des.fblock.fac(2) = factor_spec('session');
for s = 1:ns
    fd.des.fblock.fsuball.fsubject(s).scans = P(s,1:4)';
    fd.des.fblock.fsuball.fsubject(s).conds = conds;
end
fd.des.fblock.maininters{1}.inter.fnums = [1; 2];
SPM = estimate(fd, d);
cell_w = @(v) cell_weights(SPM, v);
cons = {
    'T', 'cocaine > neutral, placebo', cell_w([1 -1 0 0])
    'T', 'cocaine > neutral, N-AC',    cell_w([0 0 1 -1])
    'T', 'interaction (cue reactivity reduced by N-AC)', cell_w([1 -1 -1 1])
    'F', 'cue effect, placebo or N-AC', [cell_w([1 -1 0 0]); cell_w([0 0 1 -1])]
    'F', 'interaction (F)', cell_w([1 -1 -1 1])
    };
summary.ff_cells = finish(d, cons);
end

% ------------------------------------------------------------- ff_subjects
if want('ff_subjects')
d  = fullfile(work_dir, 'ff_subjects');
fd = base_design(d);
fd.des.fblock.fac(1) = factor_spec('subject');
fd.des.fblock.fac(2) = factor_spec('cue');
fd.des.fblock.fac(3) = factor_spec('session');
for s = 1:ns
    fd.des.fblock.fsuball.fsubject(s).scans = P(s,1:4)';
    fd.des.fblock.fsuball.fsubject(s).conds = conds;
end
fd.des.fblock.maininters{1}.fmain.fnum  = 1;
fd.des.fblock.maininters{2}.inter.fnums = [2; 3];
SPM = estimate(fd, d);
cell_w = @(v) cell_weights(SPM, v);
cons = {
    'T', 'cocaine > neutral, placebo', cell_w([1 -1 0 0])
    'T', 'cocaine > neutral, N-AC',    cell_w([0 0 1 -1])
    'T', 'interaction (cue reactivity reduced by N-AC)', cell_w([1 -1 -1 1])
    'F', 'cue effect, placebo or N-AC', [cell_w([1 -1 0 0]); cell_w([0 0 1 -1])]
    };
summary.ff_subjects = finish(d, cons);
end

% --------------------------------------------------------------- onesample
if want('onesample')
d  = fullfile(work_dir, 'onesample');
fd = base_design(d);
fd.des.t1.scans = P(:,5);
SPM = estimate(fd, d);
assert(isequal(SPM.xX.name(:)', {'mean'}));
cons = {
    'T', 'cocaine > neutral, placebo', 1
    'T', 'neutral > cocaine, placebo', -1
    };
summary.onesample = finish(d, cons);
end

% ----------------------------------------------------------- onesample_cov
if want('onesample_cov')
d  = fullfile(work_dir, 'onesample_cov');
fd = base_design(d);
fd.des.t1.scans = P(:,5);
fd.cov(1).c     = dur;
fd.cov(1).cname = 'cocaine_duration_years';
fd.cov(1).iCFI  = 1;
fd.cov(1).iCC   = 1;
SPM = estimate(fd, d);
assert(isequal(SPM.xX.name(:)', {'mean', 'cocaine_duration_years'}));
cons = {
    'T', 'cocaine > neutral, placebo (mean)', [1 0]
    'T', 'cocaine_duration_years positive',   [0 1]
    'T', 'cocaine_duration_years negative',   [0 -1]
    };
summary.onesample_cov = finish(d, cons);
end

% --------------------------------------------------------------- twosample
if want('twosample')
d  = fullfile(work_dir, 'twosample');
fd = base_design(d);
fd.des.t2.scans1   = P(strcmp(sex,'M'), 5);
fd.des.t2.scans2   = P(strcmp(sex,'F'), 5);
fd.des.t2.dept     = 0;
fd.des.t2.variance = 0;
fd.des.t2.gmsca    = 0;
fd.des.t2.ancova   = 0;
SPM = estimate(fd, d);
assert(isequal(SPM.xX.name(:)', {'Group_{1}', 'Group_{2}'}));
cons = {
    'T', 'M > F (cocaine > neutral, placebo)', [1 -1]
    'T', 'F > M (cocaine > neutral, placebo)', [-1 1]
    'T', 'cocaine > neutral, placebo (mean of groups)', [0.5 0.5]
    };
summary.twosample = finish(d, cons);
end

% ------------------------------------------------------------------ paired
if want('paired')
d  = fullfile(work_dir, 'paired');
fd = base_design(d);
for s = 1:ns
    fd.des.pt.pair(s).scans = P(s,5:6)';
end
fd.des.pt.gmsca  = 0;
fd.des.pt.ancova = 0;
SPM = estimate(fd, d);
assert(isequal(SPM.xX.name(1:2)(:)', {'Condition_{1}', 'Condition_{2}'}));
z = zeros(1, ns);
cons = {
    'T', 'placebo > N-AC (cue reactivity reduced by N-AC)', [1 -1 z]
    'T', 'N-AC > placebo', [-1 1 z]
    };
summary.paired = finish(d, cons);
end

% ------------------------------------------------------------------ summary
[v, r] = spm('Ver');
top = struct('spm', sprintf('%s (r%s)', v, r), 'octave', OCTAVE_VERSION, ...
    'designs', summary);
fid = fopen(fullfile(work_dir, 'spm_summary.json'), 'w');
fprintf(fid, '%s\n', enc(top, ''));
fclose(fid);
end

%==========================================================================
function f = factor_spec(name)
% independence yes (dept 0), variance equal (0): ordinary least squares
f = struct('name', name, 'dept', 0, 'variance', 0, 'gmsca', 0, 'ancova', 0);
end

function fd = base_design(d)
if exist(d, 'dir'), error('%s exists', d); end
mkdir(d);
fd.dir = {d};
fd.cov = struct('c', {}, 'cname', {}, 'iCFI', {}, 'iCC', {});
fd.multi_cov = struct('files', {}, 'iCFI', {}, 'iCC', {});
fd.masking.tm.tm_none = 1;
fd.masking.im = 1;
fd.masking.em = {''};
fd.globalc.g_omit = 1;
fd.globalm.gmsca.gmsca_no = 1;
fd.globalm.glonorm = 1;
end

function SPM = estimate(fd, d)
clear matlabbatch
matlabbatch{1}.spm.stats.factorial_design = fd;
matlabbatch{2}.spm.stats.fmri_est.spmmat = {fullfile(d, 'SPM.mat')};
matlabbatch{2}.spm.stats.fmri_est.write_residuals = 0;
matlabbatch{2}.spm.stats.fmri_est.method.Classical = 1;
spm_jobman('run', matlabbatch);
load(fullfile(d, 'SPM.mat'), 'SPM');
end

function w = cell_weights(SPM, v)
% weights over the design's columns for weights v over the conditions
% [cocaine/placebo neutral/placebo cocaine/nac neutral/nac], found by the
% flexible factorial's column names "cue*session_{<cue>,<session>}"
lv = [1 1; 2 1; 1 2; 2 2];
w  = zeros(1, numel(SPM.xX.name));
for i = 1:4
    nm = sprintf('cue*session_{%d,%d}', lv(i,1), lv(i,2));
    j  = find(strcmp(SPM.xX.name, nm));
    assert(numel(j) == 1, 'no column %s', nm);
    w(j) = v(i);
end
end

function S = finish(d, cons)
% contrasts, then SPM's tables for every contrast, and a summary
clear matlabbatch
matlabbatch{1}.spm.stats.con.spmmat = {fullfile(d, 'SPM.mat')};
for i = 1:size(cons, 1)
    if cons{i,1} == 'T'
        matlabbatch{1}.spm.stats.con.consess{i}.tcon = struct( ...
            'name', cons{i,2}, 'weights', cons{i,3}, 'sessrep', 'none');
    else
        matlabbatch{1}.spm.stats.con.consess{i}.fcon = struct( ...
            'name', cons{i,2}, 'weights', cons{i,3}, 'sessrep', 'none');
    end
end
matlabbatch{1}.spm.stats.con.delete = 1;
spm_jobman('run', matlabbatch);

tdir = fullfile(d, 'spm_tables');
mkdir(tdir);
cases = {
    'p0.001_k0',  'none', 0.001, 0
    'fwe0.05_k0', 'FWE',  0.05,  0
    };
load(fullfile(d, 'SPM.mat'), 'SPM');
[~, design] = fileparts(d);
S = struct();
S.erdf   = SPM.xX.erdf;
S.trRV   = SPM.xX.trRV;
S.n_images = numel(SPM.xY.P);
S.n_columns = size(SPM.xX.X, 2);
S.rank   = rank(SPM.xX.X);
S.names  = SPM.xX.name;
S.FWHM   = SPM.xVol.FWHM;
S.R      = SPM.xVol.R;
S.S      = SPM.xVol.S;
S.DIM    = SPM.xVol.DIM(:)';
S.M      = SPM.xVol.M;
S.contrasts = {};
for ic = 1:numel(SPM.xCon)
    c = SPM.xCon(ic);
    Y = spm_data_read(spm_vol(fullfile(d, c.Vspm.fname)), 'xyz', SPM.xVol.XYZ);
    cs = struct('index', ic, 'name', c.name, 'STAT', c.STAT, ...
        'weights', rows(c.c'), 'eidf', c.eidf, 'Vspm', c.Vspm.fname, ...
        'Vcon', c.Vcon.fname, 'max', max(Y), 'min', min(Y), 'tables', {{}});
    for t = 1:size(cases, 1)
        xSPM = struct('swd', d, 'title', c.name, 'Ic', ic, 'n', 1, ...
            'Im', [], 'pm', [], 'Ex', [], 'u', cases{t,3}, 'k', cases{t,4}, ...
            'thresDesc', cases{t,2});
        [SPMr, xSPM] = spm_getSPM(xSPM);
        TabDat = spm_list('Table', xSPM);
        name = sprintf('%04d_%s', ic, cases{t,1});
        write_case(tdir, name, design, SPMr, ic, xSPM, cases{t,3}, TabDat);
        cs.tables{end+1} = ['spm_tables/' name '.json'];
        fprintf('%-14s %-32s %s: u = %.4f, %d voxels, %d table rows\n', design, ...
            sprintf('%d %s', ic, c.name), cases{t,1}, xSPM.u, ...
            size(xSPM.XYZ, 2), size(TabDat.dat, 1));
    end
    S.contrasts{end+1} = cs;
end
fprintf('%s: erdf %.6f, FWHM [%s] voxels, R [%s], S %d\n', design, S.erdf, ...
    num2str(S.FWHM, ' %.4f'), num2str(S.R, ' %.4f'), S.S);
end

function r = rows(m)
% a matrix as a JSON list of rows, always (also 1 x 1 and 1 x p), as a raw
% JSON fragment for enc()
r = cell(1, size(m, 1));
for i = 1:size(m, 1)
    r{i} = ['[' strjoin(arrayfun(@num1, m(i,:), 'UniformOutput', false), ', ') ']'];
end
r = struct('json_raw_', ['[' strjoin(r, ', ') ']']);
end

%==========================================================================
function write_case(out_dir, name, design, SPM, ic, xSPM, u_in, TabDat)
ftr_text = cell(size(TabDat.ftr,1),1);
for i = 1:size(TabDat.ftr,1)
    if isempty(TabDat.ftr{i,1}), ftr_text{i} = ''; continue; end
    ftr_text{i} = sprintf(TabDat.ftr{i,1}, TabDat.ftr{i,2});
end
c  = SPM.xCon(ic);
Zs = spm_data_read(spm_vol(fullfile(xSPM.swd, c.Vspm.fname)), 'xyz', SPM.xVol.XYZ);
o = struct();
o.name      = name;
o.design    = design;
[v, r]      = spm('Ver');
o.spm       = sprintf('%s (r%s)', v, r);
o.octave    = OCTAVE_VERSION;
o.contrast  = struct('index', ic, 'name', c.name, 'STAT', c.STAT, ...
    'weights', rows(c.c'), 'Vspm', c.Vspm.fname, 'Vcon', c.Vcon.fname);
o.thresDesc = xSPM.thresDesc;
o.u_input   = u_in;
o.u         = xSPM.u;
o.k         = xSPM.k;
o.uc        = xSPM.uc;
o.uc_names  = {'FWEp','FDRp','FWEc','FDRc'};
o.inputs    = struct('STAT',xSPM.STAT,'df',xSPM.df,'n',xSPM.n, ...
    'FWHM',xSPM.FWHM,'R',xSPM.R,'S',xSPM.S, ...
    'V2R',1/prod(xSPM.FWHM(xSPM.DIM > 1)), ...
    'M',xSPM.M,'DIM',xSPM.DIM(:)','VOX',xSPM.VOX, ...
    'n_search_voxels',size(SPM.xVol.XYZ,2), ...
    'n_voxels_above_u',sum(Zs > xSPM.u), ...
    'n_voxels_after_k',size(xSPM.XYZ,2));
o.xSPM      = struct('swd', xSPM.swd, 'title', xSPM.title, ...
    'STATstr', xSPM.STATstr, 'Ic', xSPM.Ic);
if isfield(xSPM, 'units'), o.xSPM.units = xSPM.units; end   % absent here
o.Pp        = sort(xSPM.Pp(:))';
o.Pc        = sort(xSPM.Pc(:))';
o.TabDat    = struct('tit',TabDat.tit,'str',TabDat.str);
o.TabDat.hdr = TabDat.hdr;
o.TabDat.fmt = TabDat.fmt;
o.TabDat.dat = cell(size(TabDat.dat,1),1);
for i = 1:size(TabDat.dat,1), o.TabDat.dat{i} = TabDat.dat(i,:); end
o.TabDat.ftr = TabDat.ftr;
o.TabDat.ftr_text = ftr_text;
fid = fopen(fullfile(out_dir,[name '.json']),'w');
fprintf(fid,'%s\n',enc(o,''));
fclose(fid);
end

%==========================================================================
function t = read_tsv(f)
% columns of a tab-separated file as cell arrays of strings
txt = strrep(fileread(f), sprintf('\r'), '');
ln  = strsplit(txt, sprintf('\n'));
ln  = ln(~cellfun(@isempty, ln));
h   = strsplit(ln{1}, sprintf('\t'));
t   = struct();
for j = 1:numel(h), t.(h{j}) = cell(numel(ln)-1, 1); end
for i = 2:numel(ln)
    v = strsplit(ln{i}, sprintf('\t'));
    assert(numel(v) == numel(h), 'bad TSV row %d', i);
    for j = 1:numel(h), t.(h{j}){i-1} = v{j}; end
end
end

%==========================================================================
% JSON writer copied from scripts/spm_reference/spm_tables.m (plus raw
% fragments, used for lists of rows)
function s = enc(v, ind)
% Minimal JSON writer: finite numbers as %.17g (round-trip exact), NaN /
% Inf / -Inf as the strings "NaN" / "Inf" / "-Inf", numeric scalars as
% numbers, numeric vectors (row or column) as flat lists, matrices as lists
% of rows, empty numerics as [], 2-D cell arrays as lists of rows (a 1xN or
% Nx1 cell as a flat list), char as strings.
ind2 = [ind '  '];
if isstruct(v) && isscalar(v) && isequal(fieldnames(v), {'json_raw_'})
    s = v.json_raw_;     % (added here) a ready JSON fragment, see rows()
elseif isstruct(v)
    f = fieldnames(v);
    parts = cell(numel(f),1);
    for i = 1:numel(f)
        parts{i} = sprintf('%s"%s": %s', ind2, f{i}, enc(v.(f{i}), ind2));
    end
    s = sprintf('{\n%s\n%s}', strjoin(parts', sprintf(',\n')), ind);
elseif iscell(v)
    if isempty(v)
        s = '[]';
    elseif isvector(v)
        parts = cellfun(@(x) enc(x, ind2), v(:)', 'UniformOutput', false);
        s = ['[' strjoin(parts, ', ') ']'];
    else
        rws = cell(size(v,1),1);
        for r = 1:size(v,1)
            parts = cellfun(@(x) enc(x, ind2), v(r,:), 'UniformOutput', false);
            rws{r} = [ind2 '[' strjoin(parts, ', ') ']'];
        end
        s = sprintf('[\n%s\n%s]', strjoin(rws', sprintf(',\n')), ind);
    end
elseif ischar(v)
    t = strrep(v(:)', '\', '\\');
    t = strrep(t, '"', '\"');
    t = strrep(t, sprintf('\n'), '\n');
    t = strrep(t, sprintf('\t'), '\t');
    s = ['"' t '"'];
elseif islogical(v) && isscalar(v)
    if v, s = 'true'; else s = 'false'; end
elseif isnumeric(v) || islogical(v)
    v = double(full(v));
    if isempty(v)
        s = '[]';
    elseif isscalar(v)
        s = num1(v);
    elseif isvector(v)
        s = ['[' strjoin(arrayfun(@num1, v(:)', 'UniformOutput', false), ', ') ']'];
    else
        rws = cell(size(v,1),1);
        for r = 1:size(v,1)
            rws{r} = ['[' strjoin(arrayfun(@num1, v(r,:), 'UniformOutput', false), ', ') ']'];
        end
        s = ['[' strjoin(rws', ', ') ']'];
    end
else
    error('cannot encode %s', class(v));
end
end

function s = num1(x)
if isnan(x),       s = '"NaN"';
elseif x == Inf,   s = '"Inf"';
elseif x == -Inf,  s = '"-Inf"';
else               s = sprintf('%.17g', x);
end
end
