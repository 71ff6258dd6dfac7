/** The generator builds the inventory's input form: what a file holds before zod fills defaults. */
import type { InventoryInput } from '@firebreak/shared';

export type { InventoryInput };
export type RackInput = InventoryInput['racks'][number];
export type HostInput = InventoryInput['hosts'][number];
export type SwitchInput = NonNullable<InventoryInput['switches']>[number];
export type VlanInput = NonNullable<InventoryInput['vlans']>[number];
export type StorageArrayInput = NonNullable<InventoryInput['storageArrays']>[number];
export type LunInput = NonNullable<InventoryInput['luns']>[number];
export type ImageInput = NonNullable<InventoryInput['images']>[number];
export type ServerInput = NonNullable<InventoryInput['servers']>[number];
export type AssignmentInput = NonNullable<InventoryInput['assignments']>[number];
