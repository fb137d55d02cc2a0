function spm_tables(spm_dir, out_dir, scratch_dir)
% Write SPM12's own results tables (spm_list('Table',xSPM)) for the sample
% group T maps, as JSON fixtures for the project's cluster tables.
%
% FORMAT spm_tables(spm_dir, out_dir, scratch_dir)
% spm_dir     - SPM12 directory (r7771, MEX files built for Octave)
% out_dir     - where the JSON files are written
% scratch_dir - folder holding UNCOMPRESSED copies of the sample group maps
%               (task-cue_contrast-<c>_stat-t_statmap.nii + .json and
%               mask.nii = task-cue_desc-brain_mask.nii); negated T maps for
%               the negative direction are written here too.
%               make_spm_tables.sh prepares this folder.
%
% There is no SPM.mat for these maps, so spm_getSPM cannot be called.
% Instead the xSPM structure is built here by copying the code of
% spm_getSPM.m (r7771) step by step: the search volume is the brain mask
% (SPM.xVol.XYZ, column-major order as spm_spm writes it), Z is read with
% spm_data_read(Vspm,'xyz',XYZ), the height threshold u is computed exactly
% as spm_getSPM does for 'none' / 'FWE', the topological FDR and FWE
% critical values are computed from the unmasked Zum/XYZum with the same
% calls (spm_uc_peakFDR, spm_uc_clusterFDR with V2R = 1/prod(FWHM(DIM>1)),
% spm_uc), and the height then extent filtering (Q = find(Z > u);
% spm_clusters; keep clusters with >= k voxels) is the same loop.
% Smoothness (FWHM in voxels), resel counts R and the search volume S come
% from the "Smoothness" key of the JSON sidecar.
% The negative direction uses the negated T map (what SPM gives for the
% contrast with negated weights), written as a float32 image.
% Small volume correction copies spm_VOI.m (r7771, lines 101-206) for a
% sphere, then calls spm_list('Table',xSPM,Num,Dis,Str) with the SVC
% defaults (16 maxima, 4 mm), because spm_VOI itself calls
% spm_list('List',...) which needs the Graphics window.

addpath(spm_dir);
spm('defaults','fmri');
spm_get_defaults('cmdline',true);
if ~exist(out_dir,'dir'), mkdir(out_dir); end

contrasts = {'placebo','nac','interaction'};
df   = [1 84];
STAT = 'T';
n    = 1;

% thresholds: {name, thresDesc, u (as given to spm_getSPM), k}
cases = {
    'p0.001_k10', 'none', 0.001, 10
    'p0.005_k0',  'none', 0.005, 0
    'fwe0.05_k0', 'FWE',  0.05,  0
    'T3.5_k20',   'none', 3.5,   20
    };

for c = 1:numel(contrasts)
    con  = contrasts{c};
    base = fullfile(scratch_dir, sprintf('task-cue_contrast-%s_stat-t_statmap', con));
    side = jsondecode(fileread([base '.json']));
    assert(side.DegreesOfFreedom == df(2));
    sm   = side.Smoothness;
    FWHM = sm.FWHMVoxels(:)';
    R    = sm.Resels(:)';
    S    = sm.SearchVolumeVoxels;
    for d = {'pos','neg'}
        dirn = d{1};
        if strcmp(dirn,'pos')
            Vspm = spm_vol([base '.nii']);
        else
            Vspm = negated_image([base '.nii'], ...
                fullfile(scratch_dir, sprintf('neg_contrast-%s_spmT.nii', con)));
        end
        for i = 1:size(cases,1)
            [xSPM, info] = make_xSPM(Vspm, fullfile(scratch_dir,'mask.nii'), ...
                df, STAT, n, FWHM, R, S, cases{i,2}, cases{i,3}, cases{i,4});
            TabDat = spm_list('Table', xSPM);
            name = sprintf('%s_%s_%s', con, dirn, cases{i,1});
            write_case(out_dir, name, con, dirn, xSPM, info, TabDat, []);
            if strcmp(con,'interaction') && strcmp(dirn,'pos') && ...
                    any(strcmp(cases{i,1},{'p0.001_k10','p0.005_k0'}))
                % Small volume correction: 10 mm sphere at MNI (14,64,14)
                xY = struct('def','sphere','spec',10,'xyz',[14;64;14]);
                [xSVC, svc, Str] = svc_sphere(xSPM, info.SPM, xY);
                Num = spm_get_defaults('stats.results.svc.nbmax');
                Dis = spm_get_defaults('stats.results.svc.distmin');
                TabDat = spm_list('Table', xSVC, Num, Dis, Str);
                svc.Num = Num; svc.Dis = Dis;
                write_case(out_dir, [name '_svc-sphere10-14_64_14'], con, dirn, ...
                    xSVC, info, TabDat, svc);
            end
        end
    end
end
end

%==========================================================================
function V = negated_image(src, dst)
V0 = spm_vol(src);
Y  = spm_read_vols(V0);
V  = V0;
V.fname   = dst;
V.dt      = [spm_type('float32') spm_platform('bigend')];
V.pinfo   = [1 0 0]';
V.descrip = 'negated T map (contrast with negated weights)';
V = spm_write_vol(V, -Y);
V = spm_vol(dst);
end

%==========================================================================
function [xSPM, info] = make_xSPM(Vspm, maskfile, df, STAT, n, FWHM, R, S, thresDesc, u, k)
% --- SPM.xVol: search volume from the mask (as spm_spm) -------------------
VM   = spm_vol(maskfile);
YM   = spm_read_vols(VM);
[x,y,z] = ndgrid(1:VM.dim(1), 1:VM.dim(2), 1:VM.dim(3));
I    = find(YM > 0);
XYZ  = [x(I)'; y(I)'; z(I)'];
assert(isequal(VM.mat, Vspm.mat) && isequal(VM.dim, Vspm.dim));
assert(size(XYZ,2) == S, 'search volume %d ~= S %d', size(XYZ,2), S);
SPM.xVol.XYZ  = XYZ;
SPM.xVol.M    = Vspm.mat;
SPM.xVol.iM   = inv(Vspm.mat);
SPM.xVol.DIM  = Vspm.dim(:);
SPM.xVol.FWHM = FWHM;
SPM.xVol.R    = R;
SPM.xVol.S    = S;

% --- spm_getSPM.m from here ---------------------------------------------
M     = SPM.xVol.M;
VOX   = sqrt(diag(M(1:3,1:3)'*M(1:3,1:3)))';
VspmSv = Vspm;
Z     = Inf;
Z     = min(Z, spm_data_read(Vspm,'xyz',XYZ));
XYZum = XYZ;
Zum   = Z;
topoFDR = spm_get_defaults('stats.topoFDR');
u_in  = u;
switch thresDesc
    case 'FWE'
        thresDesc = ['p<' num2str(u) ' (' thresDesc ')'];
        u = spm_uc(u,df,STAT,R,n,S);
    case 'none'
        if u <= 1
            thresDesc = ['p<' num2str(u) ' (unc.)'];
            u = spm_u(u^(1/n),df,STAT);
        else
            thresDesc = [STAT '=' num2str(u) ];
        end
end
assert(topoFDR);
[up,Pp]    = spm_uc_peakFDR(0.05,df,STAT,R,n,Zum,XYZum,u);
V2R        = 1/prod(SPM.xVol.FWHM(SPM.xVol.DIM > 1));
[uc,Pc,ue] = spm_uc_clusterFDR(0.05,df,STAT,R,n,Zum,XYZum,V2R,u);
uu         = spm_uc(0.05,df,STAT,R,n,S);

Q      = find(Z > u);
Z      = Z(:,Q);
XYZ    = XYZ(:,Q);
n_height = numel(Q);
if ~isempty(XYZ)
    A = spm_clusters(XYZ);
    Q     = [];
    for i = 1:max(A)
        j = find(A == i);
        if length(j) >= k, Q = [Q j]; end
    end
    Z     = Z(:,Q);
    XYZ   = XYZ(:,Q);
end

xSPM   = struct( ...
            'swd',      '',...
            'title',    '',...
            'Z',        Z,...
            'n',        n,...
            'STAT',     STAT,...
            'df',       df,...
            'STATstr',  sprintf('%s_{%.0f}','T',df(2)),...
            'Ic',       1,...
            'Im',       {[]},...
            'pm',       [],...
            'Ex',       [],...
            'u',        u,...
            'k',        k,...
            'XYZ',      XYZ,...
            'XYZmm',    SPM.xVol.M(1:3,:)*[XYZ; ones(1,size(XYZ,2))],...
            'S',        SPM.xVol.S,...
            'R',        SPM.xVol.R,...
            'FWHM',     SPM.xVol.FWHM,...
            'M',        SPM.xVol.M,...
            'iM',       SPM.xVol.iM,...
            'DIM',      SPM.xVol.DIM,...
            'VOX',      VOX,...
            'Vspm',     VspmSv,...
            'thresDesc',thresDesc);
xSPM.VRpv  = [];           % stationary RFT (stats.rft.nonstat = 0)
xSPM.units = {'mm' 'mm' 'mm'};
xSPM.Pp    = Pp;
xSPM.Pc    = Pc;
xSPM.uc    = [uu up ue uc];

info.SPM      = SPM;
info.u_input  = u_in;
info.V2R      = V2R;
info.n_height = n_height;
info.n_search = numel(Zum);
end

%==========================================================================
function [xSPM, svc, str] = svc_sphere(xSPM, SPM, xY)
% spm_VOI.m (r7771) lines 74-206, sphere case
xyzmm      = xY.xyz;
XYZmm      = SPM.xVol.M(1:3,:)*[SPM.xVol.XYZ; ones(1, SPM.xVol.S)];
Q          = ones(1,size(xSPM.XYZmm,2));
O          = ones(1,size(     XYZmm,2));
FWHM       = xSPM.FWHM;
SPACE      = 'S';
D          = xY.spec;
str        = sprintf('%0.1fmm sphere',D);
j          = find(sum((xSPM.XYZmm - xyzmm*Q).^2) <= D^2);
k          = find(sum((     XYZmm - xyzmm*O).^2) <= D^2);
D          = D./xSPM.VOX;

xSPM.S     = length(k);
xSPM.R     = spm_resels(FWHM,D,SPACE);
xSPM.Z     = xSPM.Z(j);
xSPM.XYZ   = xSPM.XYZ(:,j);
xSPM.XYZmm = xSPM.XYZmm(:,j);

df         = xSPM.df;
STAT       = xSPM.STAT;
DIM        = xSPM.DIM;
R          = xSPM.R;
n          = xSPM.n;
Vspm       = xSPM.Vspm;
u          = xSPM.u;
S          = xSPM.S;

try, xSPM.Ps = xSPM.Ps(k); end
[up, xSPM.Pp]     = spm_uc_peakFDR(0.05,df,STAT,R,n,Vspm,k,u);
uu                = spm_uc(0.05,df,STAT,R,n,S);
try
    V2R               = 1/prod(xSPM.FWHM(DIM>1));
    [uc, xSPM.Pc, ue] = spm_uc_clusterFDR(0.05,df,STAT,R,n,Vspm,k,V2R,u);
catch
    uc                = NaN;
    ue                = NaN;
    xSPM.Pc           = [];
end
xSPM.uc    = [uu up ue uc];

str        = sprintf('search volume: %s',str);
str        = sprintf('%s at [%.0f,%.0f,%.0f]',str,xyzmm(1),xyzmm(2),xyzmm(3));

svc.def    = xY.def;
svc.spec   = xY.spec;
svc.xyz    = xY.xyz(:)';
svc.S      = xSPM.S;
svc.R      = xSPM.R;
svc.n_voxels_in_sphere_surviving = numel(j);
end

%==========================================================================
function write_case(out_dir, name, con, dirn, xSPM, info, TabDat, svc)
ftr_text = cell(size(TabDat.ftr,1),1);
for i = 1:size(TabDat.ftr,1)
    if isempty(TabDat.ftr{i,1}), ftr_text{i} = ''; continue; end
    v = TabDat.ftr{i,2};
    ftr_text{i} = sprintf(TabDat.ftr{i,1}, v);
end
o = struct();
o.name      = name;
[v, r]      = spm('Ver');
o.spm       = sprintf('%s (r%s)', v, r);
o.octave    = OCTAVE_VERSION;
o.contrast  = con;
o.direction = dirn;
o.thresDesc = xSPM.thresDesc;
o.u_input   = info.u_input;
o.u         = xSPM.u;
o.k         = xSPM.k;
o.uc        = xSPM.uc;
o.uc_names  = {'FWEp','FDRp','FWEc','FDRc'};
o.inputs    = struct('STAT',xSPM.STAT,'df',xSPM.df,'n',xSPM.n, ...
    'FWHM',xSPM.FWHM,'R',xSPM.R,'S',xSPM.S,'V2R',info.V2R, ...
    'M',xSPM.M,'DIM',xSPM.DIM(:)','VOX',xSPM.VOX, ...
    'n_search_voxels',info.n_search, ...
    'n_voxels_above_u',info.n_height, ...
    'n_voxels_after_k',size(xSPM.XYZ,2));
o.Pp        = sort(xSPM.Pp(:))';
o.Pc        = sort(xSPM.Pc(:))';
if ~isempty(svc), o.svc = svc; end
o.TabDat    = struct('tit',TabDat.tit,'str',TabDat.str);
o.TabDat.hdr = TabDat.hdr;
o.TabDat.fmt = TabDat.fmt;
% one list per table row (also when there are 0 or 1 rows)
o.TabDat.dat = cell(size(TabDat.dat,1),1);
for i = 1:size(TabDat.dat,1), o.TabDat.dat{i} = TabDat.dat(i,:); end
o.TabDat.ftr = TabDat.ftr;
o.TabDat.ftr_text = ftr_text;
fid = fopen(fullfile(out_dir,[name '.json']),'w');
fprintf(fid,'%s\n',enc(o,''));
fclose(fid);
fprintf('%-45s %3d rows\n', name, size(TabDat.dat,1));
end

%==========================================================================
function s = enc(v, ind)
% Minimal JSON writer: finite numbers as %.17g (round-trip exact), NaN /
% Inf / -Inf as the strings "NaN" / "Inf" / "-Inf", numeric scalars as
% numbers, numeric vectors (row or column) as flat lists, matrices as lists
% of rows, empty numerics as [], 2-D cell arrays as lists of rows (a 1xN or
% Nx1 cell as a flat list), char as strings.
ind2 = [ind '  '];
if isstruct(v)
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
        rows = cell(size(v,1),1);
        for r = 1:size(v,1)
            parts = cellfun(@(x) enc(x, ind2), v(r,:), 'UniformOutput', false);
            rows{r} = [ind2 '[' strjoin(parts, ', ') ']'];
        end
        s = sprintf('[\n%s\n%s]', strjoin(rows', sprintf(',\n')), ind);
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
        rows = cell(size(v,1),1);
        for r = 1:size(v,1)
            rows{r} = ['[' strjoin(arrayfun(@num1, v(r,:), 'UniformOutput', false), ', ') ']'];
        end
        s = ['[' strjoin(rows', ', ') ']'];
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
