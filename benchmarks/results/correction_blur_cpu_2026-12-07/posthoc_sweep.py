"""One-off sweep (twelfth session): a fine-tuned residual refiner's correction blurred afterwards, σ = 0, 1, 2, 4 px.

    python posthoc_sweep.py RUN REFINER DOWNSCALE   # e.g. /tmp/exp/lego_snap/lego .../refiner_adapted 4
"""
import sys

import torch
import torch.nn.functional as F
from pathlib import Path
from splatent_viewer.trained import load_trained_scene
from splatent_viewer.data.scene import load_scene
from splatent_viewer.frame import render_frame
from splatent_viewer.export.camera_paths import orbit_path
from splatent_viewer.export.consistency import reprojection, warped_difference
from splatent_viewer.training.losses import psnr, ssim
run, ref, ds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ts = load_trained_scene(run, device="cpu", refiner=ref)
scene = load_scene(ts.scene_path, downscale=ds, size_multiple=8)
def blur(x, s):
    if s == 0: return x
    r = int(3*s); k = torch.exp(-torch.arange(-r, r+1).float()**2/(2*s*s)); k = k/k.sum()
    x = x.permute(2,0,1)[None]
    x = F.conv2d(F.pad(x, (r,r,0,0), mode="replicate"), k.view(1,1,1,-1).expand(3,1,1,-1), groups=3)
    x = F.conv2d(F.pad(x, (0,0,r,r), mode="replicate"), k.view(1,1,-1,1).expand(3,1,-1,1), groups=3)
    return x[0].permute(1,2,0)
sigmas = (0, 1, 2, 4)
views = scene.split_indices["test"].tolist() or scene.split_indices["val"].tolist()
views = [views[round(i * (len(views) - 1) / 19)] for i in range(20)] if len(views) > 20 else views  # as enhancement.py
res = {s: [] for s in sigmas}
with torch.no_grad():
    for i in views:
        gt = scene.load_image(i)
        f = render_frame(scene=ts, c2w=scene.camera_to_worlds[i], K=scene.Ks[i], width=int(scene.widths[i]), height=int(scene.heights[i]), outputs=("enhanced","rgb"))
        corr = f.enhanced - f.rgb  # clamp aside
        for s in sigmas:
            e = (f.rgb + blur(corr, s)).clamp(0,1)
            res[s].append((psnr(e, gt), float(ssim(e.permute(2,0,1)[None], gt.permute(2,0,1)[None]))))
    rgbp = [psnr(render_frame(scene=ts, c2w=scene.camera_to_worlds[i], K=scene.Ks[i], width=int(scene.widths[i]), height=int(scene.heights[i]), outputs=("rgb",)).rgb, scene.load_image(i)) for i in views]
    print("rgb", sum(rgbp)/len(rgbp))
    for s in sigmas:
        print("sigma", s, "psnr %.3f ssim %.4f" % (sum(a for a,_ in res[s])/len(views), sum(b for _,b in res[s])/len(views)))
    train = scene.split_indices["train"]
    n = 24
    c2ws = orbit_path(train_c2ws=scene.camera_to_worlds[train].double(), num_frames=60).float()[:n]
    K = scene.Ks[train[0]].float(); W=int(scene.widths[train[0]]); H=int(scene.heights[train[0]])
    prev=None; acc={s: [] for s in sigmas}
    for j in range(n):
        f = render_frame(scene=ts, c2w=c2ws[j], K=K, width=W, height=H, outputs=("enhanced","rgb","depth","alpha"))
        imgs = {s: (f.rgb + blur(f.enhanced - f.rgb, s)).clamp(0,1) for s in sigmas}
        if prev is not None:
            r = reprojection(depth=f.depth, alpha=f.alpha, c2w=c2ws[j], K=K, prev_depth=prev[1].depth, prev_alpha=prev[1].alpha, prev_c2w=c2ws[j-1], prev_K=K)
            for s in sigmas: acc[s].append(warped_difference(imgs[s], prev[0][s], r))
        prev=(imgs, f)
    for s in sigmas: print("sigma", s, "warped %.4f" % (sum(acc[s])/len(acc[s])))
