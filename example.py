import latentdist as ld
from latentdist.generators import MLP, LipschitzMLP
from latentdist.latents import Discrete, Gaussian

data = ld.make_dataset("two_points", 4000, a=2.0, seed=0)           # P_x = ½δ₋₂ + ½δ₊₂ on R
for name, z in {"gaussian": Gaussian(1), "data-shaped": Discrete([[-1.0], [1.0]])}.items():
    res = ld.latent_data_distance(z, data, LipschitzMLP(lipschitz=2.0), distance="w1", seed=0)
    print(name, res)       # D ± restart spread and the noise floor; closed forms 0.7375 and 0
profile = ld.complexity_profile({"gaussian": Gaussian(1)}, data, LipschitzMLP().at([1, 2, 4, 8]), "w1")
print(ld.eps_complexity(profile, eps=0.3))                          # smallest L with D <= 0.3
ring = ld.make_dataset("gaussian_mixture_ring", 2000, seed=0)
opt = ld.optimal_latent(ring, 2, MLP(width=8, depth=2), parameterization="mixture", seed=0)
print(opt.distance)        # the optimised, data-dependent latent's D at width 8
